"""bench/lut_phases.py: a finished phase of bench_lut.py is reused after an interruption, keyed by
what it depends on, and the estimate of the time left follows the rates the run observed."""

from __future__ import annotations

import importlib.util
import json

import pytest
from helpers import REPO


@pytest.fixture(scope="module")
def phases():
    spec = importlib.util.spec_from_file_location("lut_phases", REPO / "bench" / "lut_phases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_finished_phase_is_reused_and_an_interrupted_one_runs_again(phases, tmp_path):
    store = phases.PhaseStore(tmp_path)
    calls = []

    def interrupted():
        calls.append("a")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.run("lut-isolated", {"target": "cpu-ort", "n": 64}, interrupted)
    assert not (tmp_path / "phases" / "lut-isolated.json").exists()  # nothing stored for a phase that did not finish

    def finish():
        calls.append("b")
        return {"lut": "x.json", "entries": 3}

    result, _, reused = store.run("lut-isolated", {"target": "cpu-ort", "n": 64}, finish)
    assert result == {"lut": "x.json", "entries": 3} and not reused
    again, _, reused = phases.PhaseStore(tmp_path).run("lut-isolated", {"n": 64, "target": "cpu-ort"}, finish)
    assert again == result and reused and calls == ["a", "b"]  # a new run (a new store) reuses it
    _, _, reused = store.run("lut-isolated", {"target": "cpu-ort", "n": 32}, finish)  # an input changed
    assert not reused and calls == ["a", "b", "b"]


def test_a_damaged_phase_record_is_run_again(phases, tmp_path):
    store = phases.PhaseStore(tmp_path)
    store.run("validate-isolated", {"lut": "abc"}, lambda: {"n": 1})
    (tmp_path / "phases" / "validate-isolated.json").write_text('{"key": ')
    _, _, reused = store.run("validate-isolated", {"lut": "abc"}, lambda: {"n": 2})
    assert not reused
    record = json.loads((tmp_path / "phases" / "validate-isolated.json").read_text())
    assert record["result"] == {"n": 2} and record["key"] == phases.digest({"lut": "abc"})


def test_the_estimate_counts_what_is_left_at_the_rates_seen(phases):
    plan = [("cpu-ort", "ort", "lut-isolated", 100), ("cpu-ort", "ort", "validate-isolated", 10)]
    est = phases.Estimate(plan)
    rates = phases.RATES
    assert est.seconds_left() == pytest.approx(100 * rates[("ort", "lut-isolated")] + 10 * rates[("ort", "validate")])
    est.finished("cpu-ort", "lut-isolated", 50.0, reused=False)
    assert est.seconds_left() == pytest.approx(10 * rates[("ort", "validate")])
    est.finished("cpu-ort", "validate-isolated", 5.0, reused=True)  # a reused phase says nothing about the rate
    assert est.seconds_left() == 0 and est.rates[("ort", "validate")] == rates[("ort", "validate")]
    assert est.rates[("ort", "lut-isolated")] == 0.5 and "0 phases" in est.line()
