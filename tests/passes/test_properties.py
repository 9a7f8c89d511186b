"""Property tests: every pass preserves numerics on random conv chains (groups, stride, dilation,
asymmetric pads and auto_pad, bias or none, BN variance down to 1e-12, H and W not multiples of
the dilation, batch > 1). 230 examples in the default run; ``bench/fuzz_passes.py`` runs 10,000+.

Each example goes through ``run_passes`` with verification on, so the strict oracle (ONNX
Runtime, graph optimizations off; onnx.reference where ORT refuses the input) compares every
pass's output with its input and a mismatch fails the example.
"""

from __future__ import annotations

import conv_chains as cc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploycc.passes import FoldBatchNorm, FuseGroups, PassContext, RewriteDilatedConv, run_passes
from deploycc.targets import Target

SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
METHODS = ["keep", "degenerate", "zero-insert", "space-to-batch"]


@settings(max_examples=70, **SETTINGS)
@given(cc.chains())
def test_fold_bn_preserves_numerics(chain):
    model = cc.build(chain)
    _, [rec] = run_passes(model, [FoldBatchNorm()])
    bns = sum(1 for layer in chain.layers if layer.bn != "none")
    assert len(rec.log.rewrites) + len(rec.log.refusals) == bns  # every BN folded or refused, never silent


@settings(max_examples=70, **SETTINGS)
@given(cc.chains(), st.sampled_from([*METHODS, "auto"]), st.booleans())
def test_rewrite_dilated_preserves_numerics(chain, method, force):
    model = cc.build(chain)
    p = RewriteDilatedConv(PassContext(force=force, options={"rewrite-dilated.method": method}))
    out, [rec] = run_passes(model, [p])
    for o in rec.log.stats["convs"]:
        assert o["action"] in ("kept", "rewritten", "refused")
        if o["action"] == "rewritten" and o["method"] in ("zero-insert", "space-to-batch"):
            node = next(n for n in out.graph.node if n.name == o["node"])
            factor = o.get("factor", o["dilations"])  # space-to-batch: a dense conv
            left = [d // m for d, m in zip(o["dilations"], factor)]
            assert [list(a.ints) for a in node.attribute if a.name == "dilations"] == [left]


@settings(max_examples=45, **SETTINGS)
@given(cc.chains(max_size=24), st.sampled_from([16384, 1 << 20]))
def test_fuse_preserves_numerics_and_plans_only_gains(chain, memory):
    target = Target(
        "chip", "tvm", "fp32", hardware={"peak_ops": {"fp32": 195e9}, "dram_bandwidth": 25e9, "onchip_memory": memory}
    )
    _, [rec] = run_passes(cc.build(chain), [FuseGroups(PassContext(target=target))])
    for g in rec.log.stats["groups"]:
        assert g["working_set"] <= rec.log.stats["budget"] and g["seconds_after"] < g["seconds_before"]


@settings(max_examples=45, **SETTINGS)
@given(cc.chains())
def test_all_passes_in_sequence_on_an_accelerator_target(chain):
    target = Target(
        "dla",
        "ort",
        "fp32",
        hardware={"peak_ops": {"fp32": 1e12}, "dram_bandwidth": 137e9, "onchip_memory": 1 << 20},
        legality={
            "accelerator": "DLA",
            "fallback": "GPU",
            "native_dilated_conv": True,
            "conv": {"kernel": [1, 5], "dilation": [1, 2], "padding": [0, 3], "padding_less_than_kernel": True},
        },
    )
    ctx = PassContext(target=target)
    run_passes(cc.build(chain), [FoldBatchNorm(ctx), RewriteDilatedConv(ctx), FuseGroups(ctx)])
