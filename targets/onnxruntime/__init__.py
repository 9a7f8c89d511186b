"""deploycc.targets.onnxruntime: the ONNX Runtime adapter, and this CPU's INT8 facts.

``backend`` (the adapter: the graph as ONNX Runtime optimizes it at the target's level, and
:class:`~deploycc.targets.onnxruntime.backend.ORTSession`, also the host runtime that stands in for
device-only artifacts through ``targets.backend.host_session``) and ``int8_cpu`` (which ONNX
Runtime INT8 kernels are exact on this host's CPU).

May import the shared modules of ``deploycc.targets`` and ``deploycc.core``; never another
compiler's package (import contract ``compilers`` in pyproject.toml).
"""
