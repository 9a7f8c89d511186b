"""deploycc.pipeline: ``deploycc build`` from MODEL to a verified artifact folder.

``sources`` (what MODEL names: ONNX, architecture file, zoo name) -> ``pipeline`` (load,
simplify, the target's passes, quantize, compile, verify numerics) -> ``artifact`` (staging
folder renamed into place, manifest with every file's sha256) -> ``runtime`` (open any artifact
as a Session). ``bundle`` finishes a device bundle on the device (``build --resume``); ``stages``
times the pipeline's stages for the reports.

May import ``deploycc.quantize``, ``deploycc.passes``, ``deploycc.targets``, ``deploycc.models``,
``deploycc.data`` and ``deploycc.core``; never verify, lut, fleet, ci, train or cli.
"""
