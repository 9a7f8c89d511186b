"""``[tvm] layout = "NCHWc"``: the network's convolutions, depthwise convolutions, pooling and
element-wise ops in the channel-blocked layout NCHW[x]c (x = the target's fp32 vector lanes), as
ONNX Runtime's MLAS NCHWc kernels and oneDNN run them, with layout transforms only where the
graph enters and leaves the blocked region.

A rewrite of the imported Relax ``main``, before legalization. TVM 0.27's ``ConvertLayout``
was tried first and does not do this: it converts only a dense conv2d whose channels are a
multiple of the block (a stem's 3 channels, any depthwise or grouped conv, and every layer with
e.g. 20 or 72 channels stay NCHW, with a transform pair around each), pooling takes no desired
layout, and the legalization refuses the blocked conv2d it makes. So here:

- ``relax.nn.conv2d`` (NCHW/OIHW, fp32): dense (groups 1) and depthwise (groups = channels)
  become the TE kernels of ``blocked_compute`` with their weights packed at build time; a dense
  conv whose input is NCHW with fewer channels than a block (the stem) reads NCHW directly.
  Other grouped convs stay NCHW.
- ``max_pool2d`` / ``avg_pool2d`` on a blocked input: the same Relax op with ``layout="NCHWxc"``
  (TOPI's pool2d takes the blocked layout).
- ``add``, ``subtract``, ``multiply``, ``maximum``, ``minimum`` (also TOPI's, as the importer
  emits an ONNX Clip with bound inputs) and ``relu``, ``clip``,
  ``sigmoid``, ``tanh``, ``silu`` on a blocked input: the same op on the blocked tensors (per-channel
  constants packed, scalars kept, a same-shape NCHW operand packed).
- Everything else (resize, concat, softmax, reshape, division, reductions over channels, the
  function's outputs) stays NCHW: it reads the unpacked tensor, made once per tensor. Those ops
  either change the channel axis's meaning (concat, reshape), reduce over it (softmax), or could
  turn a padded channel into a non-finite value (division), which a padded input channel times its
  zero weight would spread.
"""

from __future__ import annotations

from deploycc.core.errors import UserError

LAYOUTS = ("NCHW", "NCHWc")


def layout_setting(settings: dict, target_name: str) -> str:
    """The target's ``[tvm] layout`` ("NCHW" when absent); any other value is a UserError."""
    layout = settings.get("layout", "NCHW")
    if layout not in LAYOUTS:
        raise UserError(f"target {target_name}: [tvm] layout = {layout!r} is not one of {', '.join(LAYOUTS)}")
    return layout


def check_applies(layout: str, target_name: str, tvm_target, fusion_tiling: bool, fused_groups: int) -> None:
    """Refuse (UserError) a blocked layout where it would not take effect."""
    if layout == "NCHW":
        return
    if tvm_target.kind.name != "llvm":
        raise UserError(f"target {target_name}: [tvm] layout = {layout!r} applies to CPU (llvm) targets only")
    if fused_groups or fusion_tiling:
        raise UserError(
            f"target {target_name}: [tvm] layout = {layout!r} cannot be combined with the fuse pass's groups "
            "(their kernels are NCHW); drop `fuse` from the passes or the layout setting"
        )


def to_blocked(mod, lanes: int):
    """``mod`` with ``main`` rewritten to NCHW[lanes]c; returns (module, what was blocked)."""
    from tvm import relax

    mod = relax.transform.FoldConstant()(mod)  # a bias reshaped at import becomes one constant
    from .blocked_rewrite import Blocker

    rewriter = Blocker(mod, lanes)
    main = rewriter.visit_expr(mod["main"])
    out = rewriter.builder_.get()
    out["main"] = main
    out = relax.transform.DeadCodeElimination(["main"])(out)
    return out, dict(rewriter.counts)
