"""Project-file validation: every defect is one line naming the file and the key, exit 2."""

from __future__ import annotations

import pytest
from helpers import run_cli

from deploycc.ci import load_config
from deploycc.core.errors import UserError


def test_reads_pairs_gates_and_overrides(project, ci_cache, write_config):
    cfg = load_config(
        write_config(
            project,
            ci_cache,
            """
[gates]
min_miou_pct = 50
max_latency_ms = 100
[gates.target.cpu-ort]
max_latency_ms = 10
max_miou_drop_points = 0.5
""",
        )
    )
    assert [(m.name, t) for m, t in cfg.pairs()] == [("color", "cpu"), ("color", "cpu-ort")]
    assert cfg.gates_for("cpu") == {"min_miou": 0.5, "max_latency_ms": 100.0}  # the checks read fractions
    assert cfg.gates_for("cpu-ort")["max_miou_drop"] == pytest.approx(0.005)
    assert cfg.notes == []
    assert cfg.gates_for("cpu-ort")["max_latency_ms"] == 10.0
    assert cfg.protocol.max_repeats == 5 and cfg.threads == 1
    assert cfg.validation.path == project / "data"


@pytest.mark.parametrize(
    "body, message",
    [
        ("[gates]\nmin_mIoU = 0.5\n", "gates: unknown key(s) ['min_mIoU']"),
        ("[gates]\nmin_miou = 70\n", "gates.min_miou: 70: this key takes a fraction; write min_miou_pct = 70"),
        ("[gates]\nmin_miou_pct = 0.7\n", "0.7 is in percent: 0.7 % is no gate; for 60 % write min_miou_pct = 60"),
        ("[gates]\nmin_miou_pct = 170\n", "gates.min_miou_pct: 170: give percent (mIoU) or points"),
        ("[gates]\nmin_miou_pct = 60\nmin_miou = 0.6\n", "gates.min_miou: sets the same gate as min_miou_pct"),
        ("[gates]\nmax_latency_error_pct = 10\n", "max_latency_error_pct needs a LUT for cpu"),
        ('[lut]\ncpu = "missing.lut.json"\n', "lut.cpu: no such file or folder"),
        ('[lut]\nh100 = "x.json"\n', "lut: unknown key(s) ['h100']"),
        ('[gates]\nmax_latency_ms = "fast"\n', "gates.max_latency_ms: must be a number, got 'fast'"),
        ("[gates.target.cpu]\nmin_miou = 0.9\nspeed = 1\n", "gates.target.cpu: unknown key(s) ['speed']"),
        ("[colour]\nx = 1\n", "top level: unknown key(s) ['colour']"),
    ],
)
def test_bad_project_file_is_one_line(project, ci_cache, write_config, body, message):
    with pytest.raises(UserError, match=None) as err:
        load_config(write_config(project, ci_cache, body, "bad.toml"))
    text = str(err.value)
    assert message in text and "bad.toml" in text and "\n" not in text


def test_missing_model_file_unknown_target_and_bad_shape(project, ci_cache, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('targets = ["cpu"]\n[[models]]\nsource = "nope.onnx"\n')
    with pytest.raises(UserError, match=r"models #1.source: no such file or folder .*nope.onnx"):
        load_config(path)
    path.write_text(f'targets = ["cpu", "tpu9"]\n[[models]]\nsource = "{project / "color.onnx"}"\n')
    with pytest.raises(UserError, match="targets: unknown target 'tpu9'"):
        load_config(path)
    path.write_text('targets = ["cpu"]\n[[models]]\nsource = "mac_small"\ninput_shape = "1x3x64x128"\n')
    with pytest.raises(UserError, match=r"models #1\.source: .*784"):
        load_config(path)


def test_a_fraction_key_of_an_earlier_project_file_is_read_with_a_deprecation_note(
    project, ci_cache, write_config, capsys
):
    path = write_config(
        project, ci_cache, "[gates]\nmin_miou = 0.6\n[gates.target.cpu]\nmax_miou_drop = 0.005\n", "old.toml"
    )
    cfg = load_config(path)
    assert cfg.gates_for("cpu") == {"min_miou": 0.6, "max_miou_drop": 0.005}
    assert cfg.notes == [
        f"{path}: gates.min_miou = 0.6 is a fraction (deprecated): write min_miou_pct = 60 (percent, as on the "
        "command line)",
        f"{path}: gates.target.cpu.max_miou_drop = 0.005 is a fraction (deprecated): write max_miou_drop_points = "
        "0.5 (mIoU points, as on the command line)",
    ]


def test_cli_exit_code_2_on_bad_config(project, ci_cache, write_config, capsys):
    path = write_config(project, ci_cache, "[gates]\nmin_miou_pct = 200\n", "bad2.toml")
    assert run_cli(["ci", path]) == 2
    assert run_cli(["ci", project / "absent.toml"]) == 2
    err = capsys.readouterr().err
    assert "gates.min_miou_pct" in err and "absent.toml: no such project file" in err
