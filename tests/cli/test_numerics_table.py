"""The build's and verify's numerics tables explain themselves: what was compared with what, on
which input, each figure beside its limit, and argmax agreement for segmentation outputs."""

from __future__ import annotations

import onnx
import pytest
from helpers import rich_tables, run_cli
from int8_nets import small_net


@pytest.fixture
def net_onnx(tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "80")
    path = tmp_path / "net.onnx"
    onnx.save(small_net(), path)
    return path


def _numerics(out: str) -> list[list[str]]:
    (t,) = [t for t in rich_tables(out) if t["header"][0][0] == "against"]
    assert t["header"][0] == [
        "against",
        "input",
        "output",
        "max abs (allowed)",
        "cosine (min)",
        "argmax agreement (min)",
        "verdict",
    ]
    return t["body"]


def test_an_fp32_build_says_it_was_compared_with_the_fp32_model(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "-t", "cpu-ort", "-o", tmp_path / "a"]) == 0
    out = capsys.readouterr().out
    (row,) = _numerics(out)
    against, inputs, output, max_abs, _cosine, agreement, verdict = row
    assert (against, inputs, output, verdict) == ("FP32 model", "seed 0", "logits", "passed")
    assert "(≤ " in max_abs and "·|ref|" in max_abs  # the limit beside the figure, rtol included
    assert agreement == "100.00 %"  # a class map: agreement reported, not gated for FP32
    assert "inputs: standard normal, seed 0" in out


def test_an_int8_build_names_each_image_and_the_fp32_floor(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "-t", "cpu-int8", "-o", tmp_path / "q"]) == 0
    rows = _numerics(capsys.readouterr().out)
    *qdq, floor = rows
    assert [r[:2] for r in qdq] == [["Q/DQ model", f"image {k + 1} of {len(qdq)}"] for k in range(len(qdq))]
    assert all("(≥ 0.999)" in r[4] and r[5].endswith("(≥ 95 %)") and r[6] == "passed" for r in qdq)
    assert floor[0] == "FP32 model" and floor[1] == f"all {len(qdq)} images (worst)" and "(≥ 0.92)" in floor[4]
    assert floor[5].endswith(" %")


def test_verify_names_its_reference_and_says_what_gates_a_quantized_artifact(net_onnx, tmp_path, capsys):
    assert run_cli(["build", net_onnx, "-t", "cpu-int8", "-o", tmp_path / "q"]) == 0
    capsys.readouterr()
    assert run_cli(["verify", tmp_path / "q", "--reference", net_onnx]) == 0
    out = capsys.readouterr().out
    (row,) = _numerics(out)
    assert row[0] == f"reference {net_onnx}" and row[6] == "reported, not gated"
    assert "to gate what INT8 costs, add --data DIR --max-miou-drop POINTS" in out
