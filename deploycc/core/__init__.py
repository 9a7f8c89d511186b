"""deploycc.core: what every stage stands on, and nothing that knows about a stage.

Loading and validating ONNX models (``loader``), the error types that carry the exit-code
contract (``errors``), numerical comparison and the strict ONNX Runtime reference
(``numerics``), shapes (``shapes``), MACs and parameters (``macs``), convolution geometry and
ONNX auto_pad (``conv``), deploycc's metadata inside a model (``metadata``) and the segmentation
metrics with the Cityscapes arithmetic (``accuracy``; quantization's sensitivity analysis and
verification both score with it), and what a compiler's native code prints, kept for the build
log (``native_log``).

The bottom district: imports no other district of deploycc.
"""
