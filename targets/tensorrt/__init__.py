"""deploycc.targets.tensorrt: the TensorRT adapter (a device-ready bundle everywhere, the engine
where TensorRT and a GPU exist).

``backend`` (the adapter and its proxy session), ``engine`` (engine plans, the Python bindings'
build and session), ``trtexec`` (the engine built and verified with JetPack's ``trtexec`` instead
of the bindings), ``calib_cache`` (TensorRT's calibration-cache file format) and
``offline_checks`` (what can be checked of a bundle before the device builds its engine).

May import the shared modules of ``deploycc.targets`` and ``deploycc.core``; never another
compiler's package (import contract ``compilers`` in pyproject.toml): the ONNX Runtime session
that stands in for an engine here comes through ``targets.backend.host_session``.
"""
