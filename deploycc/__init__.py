"""deploycc: take a searched CNN to a verified, deployable artifact for a given piece of hardware.

Pipeline (each arrow one module, data only moving forward)::

    arch.json -export-> model.onnx -load-> graph -passes-> graph' -quantize-> graph''
              -compile-> artifact/ -verify-> report
"""

__version__ = "0.1.0"
