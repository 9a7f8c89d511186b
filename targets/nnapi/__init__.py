"""deploycc.targets.nnapi: the Android NNAPI adapter (phone NPUs): the model for ONNX Runtime
Mobile with its execution-provider flags and legality report (``backend``).

May import the shared modules of ``deploycc.targets`` and ``deploycc.core``; never another
compiler's package (import contract ``compilers`` in pyproject.toml).
"""
