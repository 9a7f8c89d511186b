"""One LUT workflow, two timers: the same LUT build and validation here and on a loopback fleet.

The local timer (``deploycc.lut.timer.LocalTimer``) and the fleet's
(``deploycc.fleet.lut.FleetTimer``) run through the same ``build_lut`` / ``validate``; the results
must have the same structure, differing only in what each timer records about where it measured.
Everything is built with TVM (``cpu``) and timed for real, here or on the fleet's rpc_servers.
"""

from __future__ import annotations

import pytest

from deploycc.fleet.lut import FleetOptions, FleetTimer
from deploycc.lut.profile import ProfileSettings, build_lut, protocol_for

SHAPE = (1, 3, 32, 32)


def _settings() -> ProfileSettings:
    return ProfileSettings(target="cpu", threads=1, protocol=protocol_for("min", 4))


def _build(path, cache, timer=None, progress=None):
    return build_lut(
        "fbnet", path, _settings(), SHAPE, statistic="min", cache=cache, units=["skip"], progress=progress, timer=timer
    )


def test_local_and_fleet_timers_give_the_same_lut(fleet, tmp_path):
    cache = tmp_path / "cache"
    local = _build(tmp_path / "local.json", cache)
    files, steps = [], []

    def on_step(step):  # the fleet caches each record before it reports it, while others still run
        steps.append(step)
        if step.event == "done":
            files.append(len(list((cache / "entries-remote").glob("*.json"))))

    remote = _build(tmp_path / "remote.json", cache, FleetTimer(FleetOptions(fleet.address, "cpu")), on_step)
    same = {k: v for k, v in local.to_dict().items() if k not in ("entries", "machine")}
    assert same == {k: v for k, v in remote.to_dict().items() if k not in ("entries", "machine")}
    assert list(local.entries) == list(remote.entries)
    timed = [k for k, e in local.entries.items() if e["measured"]]
    assert timed and len(timed) < len(local.entries)  # identity entries too
    for key, mine in local.entries.items():
        theirs = remote.entries[key]
        if not mine["measured"]:
            assert theirs == mine
            continue
        # the local timer records the load and the anchor of its interleaved group; a device neither
        local_only = {"load_average", "load", "anchor", "anchor_factor", "latency_raw"}
        assert set(mine) - local_only == set(theirs) - {"device"}
        assert set(mine["latency"]) == set(theirs["latency"]) and theirs["latency"]["clock"] == "device"
        assert theirs["device"] in fleet.servers and "device" not in mine
    assert "load_average" in local.machine and set(remote.machine) == {"host", "fleet"}
    stats = remote.machine["fleet"]
    assert stats["jobs_run"] == len(timed) and stats["from_cache"] == len(local.entries) - len(timed)
    # a remote run is never served from the local records in the same cache folder
    done = [s for s in steps if s.event == "done"]
    assert len(done) == len(timed) and all(s.device in fleet.servers for s in done)
    assert files[0] >= 1 and done[0].done < done[0].total and files == sorted(files)
    again = []
    rebuilt = _build(tmp_path / "remote.json", cache, FleetTimer(FleetOptions(fleet.address, "cpu")), again.append)
    assert {s.event for s in again} == {"cached"} and len(again) == len(local.entries)
    assert rebuilt.machine["fleet"]["jobs_run"] == 0 and rebuilt.entries == remote.entries


@pytest.mark.slow
def test_local_and_fleet_timers_give_the_same_validation(fleet, tmp_path):
    """Five sampled FBNet networks validated here and on the fleet (ten TVM builds)."""
    from deploycc.lut.validate import ValidationPlan, validate

    lut = build_lut(
        "fbnet",
        tmp_path / "lut.json",
        _settings(),
        SHAPE,
        statistic="min",
        cache=tmp_path / "cache",
        units=["k3_e1", "skip"],
        timer=FleetTimer(FleetOptions(fleet.address, "cpu")),
    )
    plan = ValidationPlan(n=5, seed=0, train=3)
    here = validate(lut, plan, tmp_path / "cache")
    there = validate(lut, plan, tmp_path / "cache", timer=FleetTimer(FleetOptions(fleet.address, "cpu")))
    assert list(there) == [k for k in here if k not in ("build_seconds", "load_average")] + [
        "fleet",
        "devices",
        "build_seconds",
        "load_average",
    ]
    assert [r["genotype"] for r in here["architectures"]] == [r["genotype"] for r in there["architectures"]]
    assert all(isinstance(x, list) for x in here["load_average"]) and there["load_average"] == [None] * 5
    assert set(there["devices"]) <= set(fleet.servers) and there["fleet"]["jobs_run"] == 5
