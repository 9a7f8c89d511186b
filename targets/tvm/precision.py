"""The precision a TVM target asks for, made real in the Relax module (or refused in one line).

* ``fp32``: nothing to do.
* ``fp16`` on a CUDA target: ``relax.transform.ToMixedPrecision`` (TVM's Relax mixed-precision
  pass) casts the inputs and weights of convolutions and matrix products to float16 and
  accumulates in float32 (``out_dtype="float32"``: the accuracy TensorRT's FP16 mode gives, and
  what the target's fp16 tolerance in ``[verify]`` is written for); element-wise ops follow.
  The CUDA source then computes in ``half``; the manifest records what was applied.
* ``fp16`` on a CPU target: refused. TVM's LLVM CPU path has no fast float16 kernels here, and a
  manifest must not claim a precision the code does not have.

(``int8`` never reaches here: TVM 0.27 has no INT8 convolution kernels, so ``build --backend tvm``
turns an INT8 target into FP32, see ``deploycc.build.pipeline``.)
"""

from __future__ import annotations

from deploycc.core.errors import UserError

from ..target import Target


def apply_precision(mod, target: Target, tvm_target) -> tuple[object, dict]:
    """(module, facts for the manifest) with ``target.precision`` applied."""
    if target.precision in ("fp32", None):
        return mod, {"compute": "float32"}
    if target.precision != "fp16":
        raise UserError(f"target {target.name}: TVM builds fp32 or fp16 (CUDA), not {target.precision!r}")
    if tvm_target.kind.name != "cuda":
        raise UserError(
            f"target {target.name}: precision fp16 is not supported on TVM's {tvm_target.kind.name} "
            f'(CPU) path; use precision = "fp32" or a CUDA target'
        )
    from tvm import relax

    mod = relax.transform.ToMixedPrecision(out_dtype="float32")(mod)
    return mod, {"compute": "float16", "accumulate": "float32", "pass": "relax.transform.ToMixedPrecision"}
