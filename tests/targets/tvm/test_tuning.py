"""A damaged tuning database never crashes a TVM build: it is reported in one line, moved aside,
and the build uses the default schedules; a tuned build says which kernels came from where."""

from __future__ import annotations

import gzip
import json

import pytest

pytest.importorskip("tvm")

from deploycc.targets import load_target
from deploycc.targets.tvm import tuning as tvm_tuning
from deploycc.targets.tvm.backend import TVMBackend

WORKLOAD = json.dumps(["0x1234", {"module": "..."}])
RECORD = json.dumps([0, [["trace"], [0.001], {"kind": "llvm"}, []]])


def _db(tmp_path, workloads: str, records: str):
    db = tmp_path / "db"
    db.mkdir()
    (db / tvm_tuning.WORKLOADS).write_text(workloads)
    (db / tvm_tuning.RECORDS).write_text(records)
    return db


@pytest.mark.parametrize(
    "records, needle",
    [
        (RECORD + "\n" + RECORD[:17], "line 2 is not JSON"),
        (json.dumps([3, []]) + "\n", "index below 1"),
        ('{"a": 1}\n', "line 1 is not [workload index"),
    ],
)
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


def test_tvms_own_log_lines_go_to_the_compile_log_not_the_console(tmp_path, net, capfd):
    """TVM's C++ LOG(WARNING) on applying a database is written to descriptor 2, not sys.stderr."""
    out = tmp_path / "out"
    out.mkdir()
    db = _db(tmp_path, "", "")
    tvm_tuning.seal_database(db)  # an empty database deploycc made: applied (an unsealed one is set aside)
    result = TVMBackend().compile(net, load_target("cpu"), out, {"tuning_db": str(db)})
    assert result.info["tuning_database"]["name"] == "db", result.info
    assert "Creating JSONDatabase" not in capfd.readouterr().err
    assert any("Warning: Creating JSONDatabase" in line for line in result.log), result.log


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


def test_best_only_keeps_the_fastest_valid_record_of_each_workload(tmp_path):
    workloads = "".join(json.dumps([f"0x{i}", {"module": str(i)}]) + "\n" for i in range(3))
    records = "".join(
        json.dumps([w, [["t", n], secs, {"kind": "llvm"}, []]]) + "\n"
        for n, (w, secs) in enumerate(
            [
                (0, [0.004]),
                (0, [0.002, 0.002]),
                (0, [1e10]),  # 1e10: MetaSchedule's mark of a failed run
                (2, [0.5]),
                (2, [0.7]),
            ]
        )
    )
    db = _db(tmp_path, workloads, records)
    kept, read = tvm_tuning.best_only(db, tmp_path / "ship")
    assert (kept, read) == (2, 5)
    text = {
        name: gzip.decompress((tmp_path / "ship" / (name + ".gz")).read_bytes()).decode()
        for name in (tvm_tuning.WORKLOADS, tvm_tuning.RECORDS)
    }
    shipped = [json.loads(line) for line in text[tvm_tuning.RECORDS].splitlines()]
    assert [(r[0], r[1][0][1], r[1][1]) for r in shipped] == [(0, 1, [0.002, 0.002]), (1, 3, [0.5])]
    assert [json.loads(w)[0] for w in text[tvm_tuning.WORKLOADS].splitlines()] == ["0x0", "0x2"]
    first = (tmp_path / "ship" / (tvm_tuning.RECORDS + ".gz")).read_bytes()
    tvm_tuning.best_only(db, tmp_path / "ship")
    assert (tmp_path / "ship" / (tvm_tuning.RECORDS + ".gz")).read_bytes() == first  # reproducible bytes


def test_the_shipped_database_applies_only_when_the_cache_has_none_and_seeds_tuning(tmp_path, monkeypatch):
    from deploycc.targets.tvm.backend import resolve_target, target_key, tuning_database

    target = load_target("cpu")
    tvm_target = resolve_target(target)[0]
    key = target_key(tvm_target)
    ship = tmp_path / "ship"
    (ship / key).mkdir(parents=True)
    for name, text in ((tvm_tuning.WORKLOADS, WORKLOAD + "\n"), (tvm_tuning.RECORDS, RECORD + "\n")):
        (ship / key / (name + ".gz")).write_bytes(gzip.compress(text.encode()))
    monkeypatch.setattr(tvm_tuning, "SHIPPED", ship)
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    unpacked = tmp_path / "cache" / "tvm-tuning" / f"{key}.shipped"
    assert tuning_database(target, tvm_target, {}) == unpacked  # unpacked once, applied as is
    assert (unpacked / tvm_tuning.RECORDS).read_text() == RECORD + "\n"
    assert not (tmp_path / "cache" / "tvm-tuning" / key).exists()  # the user's own: untouched
    (unpacked / tvm_tuning.RECORDS).write_text("stale")  # damaged unpacked copy: fails its seal, unpacked again
    assert tuning_database(target, tvm_target, {}) == unpacked
    assert (unpacked / tvm_tuning.RECORDS).read_text() == RECORD + "\n"
    (ship / key / (tvm_tuning.RECORDS + ".gz")).write_bytes(gzip.compress((RECORD + "\n" + RECORD + "\n").encode()))
    assert tuning_database(target, tvm_target, {}) == unpacked  # the shipped database changed: unpacked again
    assert (unpacked / tvm_tuning.RECORDS).read_text() == RECORD + "\n" + RECORD + "\n"
    seeded = tuning_database(target, tvm_target, {"tune_trials": 4})
    assert seeded == tmp_path / "cache" / "tvm-tuning" / key
    assert (seeded / tvm_tuning.RECORDS).read_text() == RECORD + "\n" + RECORD + "\n"
    assert tuning_database(target, tvm_target, {}) == seeded  # the user's own database wins from now on


def test_the_shipped_zoo_database_is_whole_and_for_a_cpu_target():
    """What `tools/tune_zoo.py --ship` committed: gzipped pairs that parse, one record per workload."""
    folders = [p for p in tvm_tuning.SHIPPED.iterdir() if p.is_dir()] if tvm_tuning.SHIPPED.is_dir() else []
    if not folders:
        pytest.skip(f"no database shipped in {tvm_tuning.SHIPPED}")
    for folder in folders:
        text = {
            n: gzip.decompress((folder / (n + ".gz")).read_bytes()).decode()
            for n in (tvm_tuning.WORKLOADS, tvm_tuning.RECORDS)
        }
        records = [json.loads(line) for line in text[tvm_tuning.RECORDS].splitlines()]
        assert len(records) == len(text[tvm_tuning.WORKLOADS].splitlines()) > 0
        assert [r[0] for r in records] == list(range(len(records)))
        assert all(r[1][2]["kind"] == "llvm" for r in records)


def test_a_cache_the_shipped_database_cannot_be_unpacked_into_leaves_the_default_schedules(
    tmp_path, monkeypatch, capsys
):
    key = "k"
    (tmp_path / "ship" / key).mkdir(parents=True)
    for name in (tvm_tuning.WORKLOADS, tvm_tuning.RECORDS):
        (tmp_path / "ship" / key / (name + ".gz")).write_bytes(gzip.compress(b"[]\n"))
    monkeypatch.setattr(tvm_tuning, "SHIPPED", tmp_path / "ship")
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    assert tvm_tuning.shipped_for(key) is None
    assert "shipped tuning database was not applied" in capsys.readouterr().err


def test_an_unsealed_or_edited_database_or_a_link_is_set_aside_in_one_line(tmp_path, capsys):
    """Hostile edits that keep every line well formed: only the seal catches them."""
    db = _db(tmp_path, WORKLOAD + "\n", RECORD + "\n")
    assert "no deploycc.seal.json" in tvm_tuning.checked(db)  # made outside deploycc
    for name in (tvm_tuning.WORKLOADS, tvm_tuning.RECORDS):
        (db / f"{name}.corrupt").rename(db / name)
    tvm_tuning.seal_database(db)
    assert tvm_tuning.checked(db) is None
    (db / tvm_tuning.RECORDS).write_text(RECORD.replace("0.001", "0.000001") + "\n")  # resealed by nobody
    assert "does not match its sha256" in tvm_tuning.checked(db)
    assert (db / (tvm_tuning.RECORDS + ".corrupt")).exists() and not (db / tvm_tuning.RECORDS).exists()
    (tmp_path / "x").mkdir()
    elsewhere = _db(tmp_path / "x", WORKLOAD + "\n", RECORD + "\n")
    link = tmp_path / "link"
    link.symlink_to(elsewhere)
    assert "symbolic link" in tvm_tuning.checked(link)
    assert (elsewhere / tvm_tuning.RECORDS).read_text() == RECORD + "\n"  # what it pointed to: untouched
    assert not link.exists() and (tmp_path / "link.corrupt").is_symlink()
    assert len([line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]) == 3
