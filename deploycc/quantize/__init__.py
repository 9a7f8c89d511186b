"""deploycc.quantize: INT8 post-training quantization, the build's ``quantize`` stage.

``calibration`` (calibration images with the model's own preprocessing; synthetic street scenes
by default) -> ``qdq`` (activation ranges through ONNX Runtime's calibrators, cached; the Q/DQ
model through ``quantize_static``) -> ``sensitivity`` (per-layer sensitivity and the
``--max-miou-drop`` budget) ; ``stage`` assembles them for a target.

May import ``deploycc.passes``, ``deploycc.targets``, ``deploycc.models``, ``deploycc.data`` and
``deploycc.core``; never pipeline or anything above it.
"""
