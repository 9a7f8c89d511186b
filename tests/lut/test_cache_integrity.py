"""LUT entry records under corruption and two concurrent ``lut build`` runs on one cache."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from deploycc.core.cache import seal
from deploycc.lut.entries import template_arch
from deploycc.lut.profile import ProfileSettings, build_lut, plan, unique_specs


def _entry_files(cache):
    return sorted((cache / "entries").glob("*.json"))


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda e: "garbage \x00\xff", "not JSON"),
        (
            lambda e: seal(
                "lut-record", e["key"], {**e["payload"], "latency": {**e["payload"]["latency"], "median_ms": -5}}
            ),
            "not positive and finite",
        ),
        (
            lambda e: seal(
                "lut-record", e["key"], {**e["payload"], "latency": {**e["payload"]["latency"], "median_ms": 1e6}}
            ),
            "out of order",
        ),
        (lambda e: seal("lut-record", e["key"], {**e["payload"], "measured": False}), "field 'measured'"),
        (lambda e: json.dumps({**e, "payload": {**e["payload"], "build_seconds": 0.5}}), "does not match its sha256"),
    ],
)
def test_a_bad_record_is_reported_and_timed_again(fbnet_lut, lut_cache, tmp_path, K, capsys, edit, why):
    cache = tmp_path / "cache"
    shutil.copytree(lut_cache / "lut", cache)
    path = _entry_files(cache)[0]
    path.write_text(edit(json.loads(path.read_text())))
    steps = []
    build_lut(
        "fbnet",
        tmp_path / "lut.json",
        ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST),
        K.SHAPE,
        statistic="min",
        cache=cache,
        units=K.UNITS,
        progress=steps.append,
    )
    err = [line for line in capsys.readouterr().err.splitlines() if "corrupt" in line]
    assert len(err) == 1 and why in err[0] and path.name in err[0]
    assert [s.event for s in steps].count("done") == 1
    assert json.loads(path.read_text())["payload"]["latency"]["median_ms"] > 0


def test_two_builds_on_one_cache_time_each_entry_once(tmp_path, K):
    specs = [s for s in unique_specs(*plan(template_arch("fbnet", K.SHAPE), K.UNITS[:2])) if not s.identity]
    timed = {0: [], 1: []}
    errors = []

    def run(i):
        try:
            build_lut(
                "fbnet",
                tmp_path / f"lut{i}.json",
                ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST),
                K.SHAPE,
                statistic="min",
                cache=tmp_path / "cache",
                units=K.UNITS[:2],
                progress=lambda s: timed[i].append(s.job) if s.event == "done" else None,
            )
        except BaseException as exc:
            errors.append(exc)

    runs = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in runs:
        t.start()
    for t in runs:
        t.join(600)
    assert not errors
    assert sorted(timed[0] + timed[1]) == sorted(s.key for s in specs)  # each entry timed once in all
    a, b = (json.loads((tmp_path / f"lut{i}.json").read_text())["entries"] for i in (0, 1))
    assert a == b
