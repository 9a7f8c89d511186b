"""rewrite-dilated: each rewrite exact on its edge cases; the choice by target legality and cost."""

from __future__ import annotations

import pytest
from helpers import make_model

from deploycc.core.errors import UserError
from deploycc.passes import PassContext, RewriteDilatedConv, op_histogram, run_passes
from deploycc.targets import Target

HEAD = '<ir_version: 8, opset_import: ["" : 17]>'


def conv_model(
    n=1, c=4, h=11, w=13, cout=4, k=3, d=(2, 2), s=(1, 1), pads="2,1,3,2", group=1, bias=True, auto_pad=None
):
    pad_attr = f'auto_pad="{auto_pad}"' if auto_pad else f"pads=[{pads}]"
    b = ", cb" if bias else ""
    p = [int(v) for v in pads.split(",")] if pads and not auto_pad else [0, 0, 0, 0]
    if auto_pad and auto_pad.startswith("SAME"):
        ho, wo = -(-h // s[0]), -(-w // s[1])
    else:
        ho, wo = ((size + p[a] + p[a + 2] - (k - 1) * d[a] - 1) // s[a] + 1 for a, size in enumerate((h, w)))
    text = f"""{HEAD} g (float[{n},{c},{h},{w}] x) => (float[{n},{cout},{ho},{wo}] y)
    {{ y = Conv<{pad_attr}, dilations=[{d[0]},{d[1]}], strides=[{s[0]},{s[1]}], group={group}>(x, cw{b}) }}"""
    return make_model(text, {"cw": (cout, c // group, k, k)} | ({"cb": (cout,)} if bias else {}))


def rewrite(model, method="auto", target=None, force=False):
    p = RewriteDilatedConv(PassContext(target=target, force=force, options={"rewrite-dilated.method": method}))
    out, records = run_passes(model, [p])  # verify=True: the strict oracle compares before/after
    return out, records[0]


EDGE_CASES = {
    "H,W not multiples of d, asymmetric pads": {"h": 11, "w": 13, "d": (3, 3), "pads": "2,1,3,2"},
    "auto_pad SAME_UPPER": {"h": 10, "w": 9, "d": (2, 2), "pads": None, "auto_pad": "SAME_UPPER"},
    "auto_pad SAME_LOWER": {"h": 9, "w": 10, "k": 2, "d": (3, 3), "auto_pad": "SAME_LOWER"},
    "auto_pad VALID": {"h": 12, "w": 12, "d": (2, 2), "auto_pad": "VALID"},
    "depthwise": {"c": 6, "cout": 6, "group": 6, "d": (4, 4), "pads": "4,4,4,4"},
    "grouped, no bias": {"c": 4, "cout": 6, "group": 2, "bias": False, "d": (2, 2), "pads": "1,2,2,1"},
    "batch 3": {"n": 3, "d": (2, 2), "pads": "2,2,2,2"},
    "batch 2, depthwise, odd size": {
        "n": 2,
        "c": 3,
        "cout": 3,
        "group": 3,
        "h": 7,
        "w": 15,
        "d": (5, 5),
        "pads": "5,5,5,5",
    },
}


@pytest.mark.parametrize("method", ["zero-insert", "space-to-batch"])
@pytest.mark.parametrize("case", list(EDGE_CASES))
def test_rewrites_are_exact_on_edge_cases(case, method):
    model = conv_model(**EDGE_CASES[case])
    out, rec = rewrite(model, method)
    assert rec.modified and rec.verification[0].ok
    conv = next(n for n in out.graph.node if n.op_type == "Conv")
    assert [a.ints for a in conv.attribute if a.name == "dilations"] == [[1, 1]]
    if method == "space-to-batch":
        assert op_histogram(out)["SpaceToDepth"] == 1 and op_histogram(out)["DepthToSpace"] == 1
    else:
        assert len(out.graph.node) == 1


def test_space_to_batch_on_batch_1_uses_reshapes_and_on_batch_2_transposes():
    one, _ = rewrite(conv_model(n=1, d=(3, 3), pads="3,3,3,3"), "space-to-batch")
    two, _ = rewrite(conv_model(n=2, d=(3, 3), pads="3,3,3,3"), "space-to-batch")
    assert op_histogram(one).get("Transpose", 0) == 0 and op_histogram(one)["Reshape"] == 2
    assert op_histogram(two)["Transpose"] == 4 and "Reshape" not in op_histogram(two)


def test_space_to_batch_refuses_stride_2_and_unequal_dilations():
    for kwargs, why in (({"s": (2, 2)}, "needs stride 1"), ({"d": (2, 3)}, "equal dilations")):
        model = conv_model(**kwargs)
        _out, rec = rewrite(model, "space-to-batch")
        assert not rec.modified and why in rec.log.refusals[0]["reason"]


def test_zero_insert_keeps_stride_2_exact():
    _out, rec = rewrite(conv_model(h=17, w=16, s=(2, 2), d=(3, 2)), "zero-insert")
    assert rec.verification[0].ok


@pytest.mark.parametrize("h,w,kernel", [(4, 4, [1, 1]), (4, 20, [1, 3]), (20, 3, [3, 1])])
def test_degenerate_taps_reduce_the_kernel(h, w, kernel):
    model = conv_model(h=h, w=w, d=(6, 6) if h < 6 or w < 6 else (2, 2), pads="6,6,6,6")
    if h >= 6 and w >= 6:
        pytest.skip("not degenerate")
    out, rec = rewrite(model, "degenerate")
    conv = out.graph.node[0]
    assert rec.verification[0].ok
    assert [list(a.ints) for a in conv.attribute if a.name == "kernel_shape"] == [kernel]


def test_degenerate_is_refused_when_every_tap_reads_input():
    _, rec = rewrite(conv_model(h=16, w=16, d=(2, 2), pads="2,2,2,2"), "degenerate")
    assert not rec.modified and "every kernel tap reads real input" in rec.log.refusals[0]["reason"]


def _target(native=True, rules=True) -> Target:
    legality = {"accelerator": "DLA", "fallback": "GPU", "native_dilated_conv": native}
    if rules:
        legality["conv"] = {
            "kernel": [1, 32],
            "stride": [1, 8],
            "dilation": [1, 32],
            "padding": [0, 31],
            "padding_less_than_kernel": True,
        }
    return Target(
        "t", "ort", "int8", hardware={"peak_ops": {"int8": 5.7e12}, "dram_bandwidth": 137e9}, legality=legality
    )


ASPP = """{head} g (float[1,16,{h},{w}] x) => (float[1,4,{h},{w}] y6, float[1,4,{h},{w}] y12, float[1,4,{h},{w}] y18,
                                             float[1,16,{h},{w}] yd2)
{{ y6 = Conv<pads=[6,6,6,6], dilations=[6,6], group=4>(x, w6)
   y12 = Conv<pads=[12,12,12,12], dilations=[12,12], group=4>(x, w12)
   y18 = Conv<pads=[18,18,18,18], dilations=[18,18], group=4>(x, w18)
   yd2 = Conv<pads=[2,2,2,2], dilations=[2,2], group=16>(x, wd) }}"""


@pytest.mark.parametrize("h,w", [(64, 128), (32, 64)])  # the stride-16 maps of 1024x2048 and 512x1024
def test_aspp_branches_become_dla_legal(h, w, dla_target):
    model = make_model(
        ASPP.format(head=HEAD, h=h, w=w),
        {"w6": (4, 4, 3, 3), "w12": (4, 4, 3, 3), "w18": (4, 4, 3, 3), "wd": (16, 1, 3, 3)},
    )
    _, rec = rewrite(model, target=dla_target)
    by_node = {o["node"]: o for o in rec.log.stats["convs"]}
    # partial zero-insertion: the fewest taps at dilation 2 whose kernel exceeds the pad
    for node, factor in (("Conv_0", [3, 3]), ("Conv_1", [6, 6]), ("Conv_2", [9, 9])):
        assert by_node[node]["method"] == "zero-insert" and by_node[node]["factor"] == factor
        assert by_node[node]["violations_before"] and by_node[node]["violations_after"] == []
    full_18 = next(c for c in by_node["Conv_2"]["candidates"] if c.get("factor") == [18, 18])
    assert full_18["violations"] == ["kernel [37, 37] outside [1, 32]"]  # full insertion: 37 taps
    assert by_node["Conv_3"]["action"] == "kept"  # d=2, pad 2 < 3: legal natively
    legality = rec.log.stats["legality"]
    assert legality["still_illegal"] == [] and legality["needs_fallback_ops"] == []
    assert legality["verdict"] == "every dilated conv is legal for DLA after the pass"


def _no_dilation(dla_target, ops):
    from dataclasses import replace

    conv = {**dla_target.legality["conv"], "dilation": [1, 1]}
    return replace(dla_target, legality={**dla_target.legality, "conv": conv, "ops": ops})


def test_space_to_batch_where_the_accelerator_has_no_dilation(dla_target):
    model = conv_model(h=64, w=64, d=(18, 18), pads="18,18,18,18")
    everything = ["Pad", "SpaceToDepth", "Reshape", "DepthToSpace", "Slice", "Transpose", "Conv"]
    _, rec = rewrite(model, target=_no_dilation(dla_target, everything))
    assert rec.log.stats["convs"][0]["method"] == "space-to-batch"
    assert rec.log.stats["legality"]["needs_fallback_ops"] == []
    _, rec = rewrite(model, target=_no_dilation(dla_target, ["Conv", "Slice"]))
    assert rec.log.stats["convs"][0]["method"] == "space-to-batch"
    assert (
        "Pad, SpaceToDepth, Reshape, DepthToSpace ops have no accelerator layer" in rec.log.stats["convs"][0]["reason"]
    )
    assert rec.log.stats["legality"]["needs_fallback_ops"] == ["Conv_0"]
    assert "run on GPU" in rec.log.stats["legality"]["verdict"]


def test_says_so_when_no_rewrite_makes_a_conv_legal(dla_target):
    # rate 31 is prime: zero-insertion needs 63 taps; stride 2 rules out space-to-batch; a 96x96 map
    # rules out degenerate taps
    model = conv_model(h=96, w=96, s=(2, 2), d=(31, 31), pads="31,31,31,31")
    _out, rec = rewrite(model, target=dla_target)
    assert not rec.modified
    reason = rec.log.refusals[0]["reason"]
    assert reason.startswith("no exact rewrite makes it legal")
    assert (
        "zero-insert x31x31: kernel [63, 63] outside [1, 32]" in reason and "space-to-batch: needs stride 1" in reason
    )
    assert rec.log.stats["legality"]["still_illegal"] == ["Conv_0"]


def test_forced_method_that_stays_illegal_is_reported(dla_target):
    model = conv_model(h=64, w=64, d=(18, 18), pads="18,18,18,18")
    _out, rec = rewrite(model, method="zero-insert", target=dla_target)
    assert rec.modified and rec.log.stats["legality"]["still_illegal"] == ["Conv_0"]


def test_native_target_keeps_legal_dilated_convs_unless_forced():
    model = conv_model(d=(2, 2), pads="2,2,2,2")
    _, kept = rewrite(model)  # no target: no rules, native
    assert not kept.modified and kept.log.stats["convs"][0]["action"] == "kept"
    _out, forced = rewrite(model, force=True)
    assert forced.modified and forced.log.stats["convs"][0]["action"] == "rewritten"


def test_non_native_target_rewrites_every_dilated_conv_to_a_dense_one():
    out, rec = rewrite(conv_model(d=(4, 4), pads="4,4,4,4"), target=_target(native=False, rules=False))
    assert rec.modified and rec.log.stats["convs"][0]["action"] == "rewritten"
    conv = next(n for n in out.graph.node if n.op_type == "Conv")
    assert [list(a.ints) for a in conv.attribute if a.name == "dilations"] == [[1, 1]]  # no partial insertion


def test_kept_conv_gets_explicit_pads_instead_of_same_auto_pad():
    out, rec = rewrite(conv_model(h=10, w=9, d=(2, 2), auto_pad="SAME_UPPER"))
    conv = out.graph.node[0]
    assert rec.modified and "auto_pad" not in [a.name for a in conv.attribute]
    assert rec.oracle.startswith("onnx.reference")  # ORT refuses the pre-pass model


def test_unknown_method_is_a_usage_error():
    with pytest.raises(UserError, match=r"rewrite-dilated\.method=fast"):
        rewrite(conv_model(), method="fast")
