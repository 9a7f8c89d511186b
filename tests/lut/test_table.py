"""The LUT file: round trip, and one clear refusal for every kind of bad file."""

from __future__ import annotations

import json

import pytest

from deploycc.cli.main import main
from deploycc.core.errors import UserError
from deploycc.lut.profile import toolchain_versions
from deploycc.lut.table import check_compatible, load_lut, save_lut
from deploycc.targets import load_target


def test_round_trip_keeps_everything(fbnet_lut, tmp_path):
    lut = load_lut(fbnet_lut)
    again = load_lut(save_lut(lut, tmp_path / "again.json"))
    assert again.to_dict() == lut.to_dict()
    assert lut.space == "fbnet" and lut.input_shape == (1, 3, 32, 32) and lut.threads == 1
    assert lut.target["name"] == "cpu-ort" and "onnxruntime" in lut.toolchain
    assert lut.machine.get("cpus") and lut.protocol["warmup"] == 1


@pytest.fixture
def refusal(space_arch, capsys):
    """``refusal(lut)``: the one error line of `deploycc lut predict` on a bad LUT (exit code 2)."""
    return lambda path: _refusal(space_arch, path, capsys)


def _refusal(arch, path, capsys) -> str:
    code = main(["lut", "predict", str(arch), "--lut", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    return err


def test_truncated_file_is_refused(lut_copy, refusal):
    text = lut_copy.read_text()
    lut_copy.write_text(text[: len(text) // 2])
    assert "truncated or corrupt" in refusal(lut_copy)


def test_edited_file_fails_its_checksum(lut_copy, refusal):
    d = json.loads(lut_copy.read_text())
    key = next(k for k, e in d["entries"].items() if e["measured"])
    d["entries"][key]["latency"]["min_ms"] *= 0.5
    lut_copy.write_text(json.dumps(d))
    assert "checksum" in refusal(lut_copy)


@pytest.mark.parametrize(
    "field,value,words", [("format", "other", "not a deploycc LUT"), ("version", 99, "version 99 is not supported")]
)
def test_unknown_format_or_version(lut_copy, capsys, field, value, words, refusal):
    d = json.loads(lut_copy.read_text())
    d[field] = value
    lut_copy.write_text(json.dumps(d))
    assert words in refusal(lut_copy)


def test_missing_file_and_dangling_entry(lut_copy, tmp_path, refusal):
    assert "not found" in refusal(tmp_path / "none.json")
    lut = load_lut(lut_copy)
    lut.entries.pop(lut.stem)
    save_lut(lut, lut_copy)
    assert "does not contain" in refusal(lut_copy)


def test_other_toolchain_version_is_refused_unless_allowed(lut_copy, refusal, space_arch, capsys):
    lut = load_lut(lut_copy)
    lut.toolchain["onnxruntime"] = "0.0.1"
    save_lut(lut, lut_copy)
    err = refusal(lut_copy)
    assert "onnxruntime 0.0.1" in err and "--allow-mismatch" in err
    code = main(["lut", "predict", str(space_arch), "--lut", str(lut_copy), "--allow-mismatch", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["predictions"][0]["predicted_ms"] > 0


def test_other_target_is_refused_unless_allowed(fbnet_lut):
    lut = load_lut(fbnet_lut)
    tvm = load_target("cpu")
    with pytest.raises(UserError, match="measured on target 'cpu-ort', not 'cpu'"):
        check_compatible(lut, tvm, toolchain_versions(tvm))
    problems = check_compatible(lut, tvm, toolchain_versions(tvm), allow_mismatch=True)
    assert problems and "cpu-ort" in problems[0]
    ort_target = load_target("cpu-ort")
    assert check_compatible(lut, ort_target, toolchain_versions(ort_target)) == []
