"""The passes on the real zoo nets (slow: full-size exports with verification on).

The ASPP branches of every zoo DeepLabV3+ head (``mac_xlarge``, ``lat_xlarge``: dilations 6/12/18
on the stride-16 map) must satisfy the Xavier DLA conv rules after rewrite-dilated, at 1024x2048
and at 512x1024; and ``deploycc optimize`` must run every pass on every zoo net.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from helpers import run_cli

from deploycc.passes import FoldBatchNorm, PassContext, RewriteDilatedConv, run_passes
from deploycc.pipeline.pipeline import simplify
from deploycc.pipeline.sources import load_source
from deploycc.targets import TARGET_DIR, load_target

HERE = Path(__file__).resolve().parent
DLA = "xavier-dla-int8" if (TARGET_DIR / "xavier-dla-int8.toml").is_file() else str(HERE / "xavier-dla-test.toml")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("shape", [(1, 3, 1024, 2048), (1, 3, 512, 1024)])
@pytest.mark.parametrize("net", ["mac_xlarge", "lat_xlarge"])
def test_aspp_branches_are_dla_legal_after_rewrite_dilated(net, shape):
    with tempfile.TemporaryDirectory() as scratch:
        model, source = load_source(net, Path(scratch), shape)
    ctx = PassContext(target=load_target(DLA))
    _, records = run_passes(simplify(model, source), [FoldBatchNorm(ctx), RewriteDilatedConv(ctx)])
    stats = records[1].log.stats
    assert stats["legality"]["still_illegal"] == [], stats["legality"]["verdict"]
    aspp = {tuple(o["dilations"]): o for o in stats["convs"] if o["dilations"][0] in (6, 12, 18)}
    assert set(aspp) == {(6, 6), (12, 12), (18, 18)}
    # partial zero-insertion at dilation 2 (full insertion would need 13, 25 and 37 taps)
    assert {d: (o["method"], o.get("factor")) for d, o in aspp.items()} == {
        (6, 6): ("zero-insert", [3, 3]),
        (12, 12): ("zero-insert", [6, 6]),
        (18, 18): ("zero-insert", [9, 9]),
    }
    assert all(o["violations_before"] for o in aspp.values())  # padding >= kernel before the pass
    assert stats["legality"]["needs_fallback_ops"] == []


ZOO = ["mac_small", "lat_small", "mac_large", "lat_large", "mac_xlarge", "lat_xlarge", "fbnet_a", "squeezenet1_1"]


@pytest.mark.parametrize("net", ZOO)
def test_optimize_runs_every_pass_on_every_zoo_net(net, tmp_path, capsys):
    out, trace = tmp_path / f"{net}.onnx", tmp_path / "trace.json"
    code = run_cli(
        ["optimize", net, "-o", out, "--target", DLA, "--passes", "fold-bn,rewrite-dilated,fuse", "--trace", trace]
    )
    assert code == 0 and out.is_file()
    data = json.loads(trace.read_text())
    assert [p["name"] for p in data["passes"]] == ["fold-bn", "rewrite-dilated", "fuse"]
    assert all(p["verification"] or not p["modified"] for p in data["passes"])
    assert "legal for DLA" in " ".join(capsys.readouterr().out.split())
