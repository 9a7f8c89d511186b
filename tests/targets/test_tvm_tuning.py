"""A damaged tuning database never crashes a TVM build: it is reported in one line, moved aside,
and the build uses the default schedules; a tuned build says which kernels came from where."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("tvm")

from deploycc.targets import load_target  # noqa: E402
from deploycc.targets import tvm_tuning  # noqa: E402
from deploycc.targets.tvm_backend import TVMBackend  # noqa: E402

WORKLOAD = json.dumps(["0x1234", {"module": "..."}])
RECORD = json.dumps([0, [["trace"], [0.001], {"kind": "llvm"}, []]])


def _db(tmp_path, workloads: str, records: str):
    db = tmp_path / "db"
    db.mkdir()
    (db / tvm_tuning.WORKLOADS).write_text(workloads)
    (db / tvm_tuning.RECORDS).write_text(records)
    return db


@pytest.mark.parametrize("records, needle", [
    (RECORD + "\n" + RECORD[:17], "line 2 is not JSON"),
    (json.dumps([3, []]) + "\n", "index below 1"),
    ("{\"a\": 1}\n", "line 1 is not [workload index"),
])
def test_damage_is_found_and_named(tmp_path, records, needle):
    assert needle in tvm_tuning.problem(_db(tmp_path, WORKLOAD + "\n", records))


def test_a_whole_database_passes(tmp_path):
    assert tvm_tuning.problem(_db(tmp_path, WORKLOAD + "\n", RECORD + "\n" + RECORD + "\n")) is None


def test_damaged_database_is_moved_aside_and_the_build_goes_on(tmp_path, net, capsys):
    db = _db(tmp_path, WORKLOAD + "\n", RECORD + "\n" + RECORD[:9])
    out = tmp_path / "out"
    out.mkdir()
    result = TVMBackend().compile(net, load_target("cpu"), out, {"tuning_db": str(db)})
    note = result.info["tuning_database_note"]
    assert "damaged" in note and "line 2" in note
    err = [line for line in capsys.readouterr().err.splitlines() if "damaged" in line]
    assert len(err) == 1
    assert (db / (tvm_tuning.RECORDS + ".corrupt")).exists() and not (db / tvm_tuning.RECORDS).exists()
    assert result.info["tuning_database"] is None
    assert result.info["schedules"]["unscheduled"] == 0 and result.info["schedules"]["default"] > 0


@pytest.mark.slow
def test_tuned_build_applies_records_and_leaves_no_kernel_naive(tmp_path, net):
    """Real MetaSchedule tuning (a few trials): kernels without a record keep the default schedule."""
    out = tmp_path / "out"
    out.mkdir()
    options = {"tuning_db": str(tmp_path / "db"), "tune_trials": 8, "trials_per_task": 2}
    result = TVMBackend().compile(net, load_target("cpu"), out, options)
    schedules = result.info["schedules"]
    assert schedules["tuned"] > 0 and schedules["unscheduled"] == 0, schedules
    records = (tmp_path / "db" / tvm_tuning.RECORDS).read_text()
    (tmp_path / "db" / tvm_tuning.RECORDS).write_text(records[: len(records) // 2])
    again = TVMBackend().compile(net, load_target("cpu"), out, {"tuning_db": str(tmp_path / "db")})
    assert "damaged" in again.info["tuning_database_note"] and again.info["schedules"]["unscheduled"] == 0
