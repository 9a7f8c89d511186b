"""The gates table of ``deploycc ci`` piped at 80 columns: one line per gate, pair names whole."""

from __future__ import annotations

import json

from helpers import run_cli

GATES = """
[gates]
min_miou_pct = 50
max_miou_drop_points = 0.5
max_latency_ms = 10000
"""


def test_the_gates_table_keeps_one_line_per_gate_in_a_pipe(project, ci_cache, write_config, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    path = write_config(project, ci_cache, GATES, "table.toml", targets='"cpu-ort", "xavier-int8"')
    capsys.readouterr()
    assert run_cli(["ci", path]) == 3
    lines = capsys.readouterr().out.splitlines()
    report = json.loads((project / "reports" / "report.json").read_text())
    body = [line for line in lines if line.startswith("│")]
    expected = [(p["pair"], g["gate"]) for p in report["pairs"] for g in p["gates"]]
    assert [tuple(c.strip() for c in line[1:-1].split("│")[:2]) for line in body] == expected
    assert sum(1 for line in lines if line.startswith("┃")) == 1  # the header on one line
    cells = {tuple(c.strip() for c in line[1:-1].split("│")[:2]): line[1:-1].split("│") for line in body}
    # mIoU as a person typed it: percent, and its drop in points
    assert cells[("color@cpu-ort", "min-miou")][3].strip() == "58.33 %"
    assert cells[("color@cpu-ort", "min-miou")][4].strip() == "50.00 %"
    assert cells[("color@cpu-ort", "max-miou-drop")][4].strip() == "0.50 pts"
    assert "(limit 0.50 points)" in cells[("color@cpu-ort", "max-miou-drop")][5]
