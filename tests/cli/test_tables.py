"""Tables piped into a file or a CI log at 80 columns: every row on one line, no cell split.

Each command runs in process with its stdout captured (not a terminal) and ``COLUMNS=80`` (what
rich assumes for a pipe). Every table the command prints is parsed; its header must be one line,
its body one line per row of the command's ``--json`` data, and every name of the first column
must stand whole in one cell.
"""

from __future__ import annotations

import json

import pytest
from helpers import REPO, rich_tables, run_cli


def run(capsys, monkeypatch, args: list) -> tuple[str, dict]:
    """(the tables' text at 80 columns, the --json data) of one command."""
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli(args) in (0, 3), capsys.readouterr().err
    text = capsys.readouterr().out
    assert run_cli([*args, "--json"]) in (0, 3)
    return text, json.loads(capsys.readouterr().out)


def check_table(t: dict, names: list[str]) -> None:
    assert len(t["header"]) == 1, f"a header cell was split: {t['header']}"
    assert len(t["body"]) == len(names), f"{len(names)} rows printed on {len(t['body'])} lines"
    assert [row[0] for row in t["body"]] == [str(n) for n in names]


def test_targets_one_line_per_target(capsys, monkeypatch):
    text, data = run(capsys, monkeypatch, ["targets"])
    (t,) = rich_tables(text)
    check_table(t, [r["name"] for r in data["targets"]])
    assert "xavier-dla-int8" in [row[0] for row in t["body"]]


def test_passes_one_line_per_pass(capsys, monkeypatch):
    text, data = run(capsys, monkeypatch, ["passes"])
    (t,) = rich_tables(text)
    check_table(t, [r["name"] for r in data["passes"]])


def test_inspect_one_line_per_layer(capsys, monkeypatch):
    model = REPO / "models" / "zoo" / "trained" / "street_ref.onnx"
    text, data = run(capsys, monkeypatch, ["inspect", model])
    layers, ops = rich_tables(text)
    check_table(layers, [layer["name"] for layer in data["layers"] if layer["macs"] or layer["params"]])
    check_table(ops, list(data["ops"]))
    # title, top, header, separator and bottom of two tables, and the totals line: nothing folded
    assert len(text.splitlines()) == len(layers["body"]) + len(ops["body"]) + 2 * 5 + 1


def test_inspect_legality_one_line_per_node(capsys, monkeypatch, tiny_onnx):
    text, _ = run(capsys, monkeypatch, ["inspect", tiny_onnx, "--target", "xavier-dla-int8"])
    for t in rich_tables(text):
        assert len(t["header"]) == 1
        assert all(len(row) == len(t["header"][0]) for row in t["body"])


def test_optimize_and_build_one_line_per_pass(capsys, monkeypatch, tiny_onnx, tmp_path):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    # run twice (tables, then --json) into one file: the second run replaces the first's, as the user asks
    text, data = run(capsys, monkeypatch, ["optimize", tiny_onnx, "-o", tmp_path / "o.onnx", "--overwrite"])
    passes, *fusion_groups = rich_tables(text)
    check_table(passes, [p["name"] for p in data["passes"]])
    for t in fusion_groups:
        check_table(t, [g["id"] for p in data["passes"] for g in p["stats"].get("groups", [])])
    text = _plain(capsys, monkeypatch, ["build", tiny_onnx, "-t", "cpu-ort", "-o", tmp_path / "b"])
    passes, numerics = rich_tables(text)
    check_table(passes, ["fold-bn"])
    check_table(numerics, ["FP32 model"])
    text = _plain(capsys, monkeypatch, ["bench", tmp_path / "b", "--max-repeats", "3", "--max-seconds", "2"])
    (latency,) = rich_tables(text)
    assert len(latency["header"]) == 1 and len(latency["body"]) == 1


def test_data_check_one_line_per_class(capsys, monkeypatch, tmp_path):
    assert run_cli(["data", "synth", "--out", tmp_path / "d", "--n", "1", "--size", "32x64"]) == 0
    capsys.readouterr()
    text, data = run(capsys, monkeypatch, ["data", "check", tmp_path / "d"])
    (t,) = rich_tables(text)
    check_table(t, [*data["pixels_per_class"], "(ignored)"])


def _plain(capsys, monkeypatch, args: list) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    capsys.readouterr()
    assert run_cli(args) == 0, capsys.readouterr().err
    return capsys.readouterr().out


@pytest.mark.parametrize("width", [40, 80])
def test_a_long_cell_is_never_folded_in_a_pipe(capsys, monkeypatch, width):
    from deploycc.cli.output import console, table

    monkeypatch.setenv("COLUMNS", str(width))
    long = "xavier-dla-int8-with-a-very-long-name-" * 3
    title = "a title much wider than the table it stands over, " * 3
    console.print(table(title, ["name", "n"], [[long, 1]]))
    out = capsys.readouterr().out
    (t,) = rich_tables(out)
    check_table(t, [long])
    assert out.splitlines()[0].rstrip() == title.rstrip()  # the title on one line too
