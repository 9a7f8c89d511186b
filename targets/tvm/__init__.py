"""deploycc.targets.tvm: the Apache TVM (Relax) compiler adapter and everything only it uses.

``backend`` (the adapter: ONNX -> Relax -> LLVM or CUDA code -> one library), ``fusion`` (the
``fuse`` plan honoured as one PrimFunc per group), ``cpu_schedules`` and ``cpu_resize`` (deploycc's
default CPU schedules), ``support`` (what TVM's ONNX importer gets wrong, refused up front),
``tuning`` (the MetaSchedule database checked before use, tuning in the CPU rules' design space)
and ``rule_search`` (its in-process builder and exhaustive search), ``precision`` (FP16 as Relax
mixed precision), ``cuda`` (CUDA kernels compiled ahead of time), ``threads`` (TVM's pool sized to
the physical cores), and ``shipped_tuning/<target key>/`` (tuning databases shipped for one CPU
kind by ``tools/tune_zoo.py``).

May import the shared modules of ``deploycc.targets`` and ``deploycc.core``; never another
compiler's package (import contract ``compilers`` in pyproject.toml).
"""
