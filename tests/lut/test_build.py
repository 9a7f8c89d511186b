"""Building LUTs for real: entries, the cache, resuming after an interruption, TVM entries."""

from __future__ import annotations

import json
import shutil

import pytest

from deploycc.core.errors import UserError
from deploycc.lut import load_lut
from deploycc.lut.entries import template_arch
from deploycc.lut.profile import ProfileSettings, build_lut, plan, profile_entry, unique_specs
from deploycc.targets import load_target


def test_lut_covers_stem_head_and_every_candidate(fbnet_lut, K):
    lut = load_lut(fbnet_lut)
    assert len(lut.layers) == 22
    assert all(set(layer["candidates"]) == set(K.UNITS) for layer in lut.layers)
    stem, head = lut.entries[lut.stem], lut.entries[lut.head_entry]
    assert stem["kind"] == "stem" and stem["inputs"] == [list(K.SHAPE)]
    assert head["kind"] == "head" and head["inputs"] == [[1, 352, 1, 1]]
    first = lut.entries[lut.layers[0]["candidates"]["k3_e6"]]
    assert (first["c_in"], first["c_out"], first["stride"], first["inputs"]) == (16, 16, 1, [[1, 16, 16, 16]])
    for entry in lut.entries.values():
        if entry["measured"]:
            lat = entry["latency"]
            assert 0 < lat["min_ms"] <= lat["median_ms"] <= lat["p90_ms"] and lat["threads"] == 1
    reduce = lut.entries[lut.layers[1]["candidates"]["skip"]]  # 16 -> 24, stride 2: a 1x1 conv
    identity = lut.entries[lut.layers[2]["candidates"]["skip"]]  # 24 -> 24, stride 1: nothing
    assert reduce["measured"] is True and lut.entry_ms(lut.layers[1]["candidates"]["skip"]) > 0
    assert identity["measured"] is False and lut.entry_ms(lut.layers[2]["candidates"]["skip"]) == 0.0


def test_rebuild_measures_nothing_and_gives_the_same_table(fbnet_lut, lut_cache, tmp_path, K):
    seen = []
    build_lut(
        "fbnet",
        tmp_path / "again.json",
        ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST),
        K.SHAPE,
        statistic="min",
        cache=lut_cache / "lut",
        progress=lambda step: seen.append(step.event == "cached"),
        units=K.UNITS,
    )
    assert seen and all(seen)
    assert load_lut(tmp_path / "again.json").entries == load_lut(fbnet_lut).entries


def test_interrupted_build_writes_nothing_and_resumes(fbnet_lut, lut_cache, tmp_path, K):
    cache = tmp_path / "cache"
    shutil.copytree(lut_cache / "lut", cache)
    arch = template_arch("fbnet", K.SHAPE)
    specs = [s for s in unique_specs(*plan(arch, K.UNITS)) if not s.identity]
    # forget four entries, as if the first build had never measured them
    forgotten = specs[-4:]
    for path in (cache / "entries").glob("*.json"):
        record = json.loads(path.read_text())["payload"]  # a sealed cache entry
        if any(all(record[k] == v for k, v in spec.to_dict().items()) for spec in forgotten):
            path.unlink()

    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST)
    new = []

    def interrupt_after_two(step):
        if step.event != "cached":
            new.append(step.job)
            if len(new) == 2:
                raise KeyboardInterrupt

    out = tmp_path / "lut.json"
    with pytest.raises(KeyboardInterrupt):
        build_lut(
            "fbnet", out, settings, K.SHAPE, statistic="min", cache=cache, progress=interrupt_after_two, units=K.UNITS
        )
    assert not out.exists() and not list(tmp_path.glob(".lut.json*"))
    resumed = []
    lut = build_lut(
        "fbnet",
        out,
        settings,
        K.SHAPE,
        statistic="min",
        cache=cache,
        units=K.UNITS,
        progress=lambda step: resumed.append(step.job) if step.event != "cached" else None,
    )
    assert resumed == [s.key for s in forgotten[2:]]
    assert all(set(layer["candidates"]) <= set(K.UNITS) for layer in lut.layers)


def test_torn_cache_file_is_measured_again(lut_cache, tmp_path, K):
    arch = template_arch("fbnet", K.SHAPE)
    spec = next(s for s in unique_specs(*plan(arch, ["k3_e1"])) if s.kind == "unit")
    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST)
    target = load_target("cpu-ort")
    record, cached = profile_entry(spec, arch, target, settings, tmp_path)
    assert not cached and record["latency"]["runs"] >= 3
    (path,) = tmp_path.glob("*.json")
    path.write_text(path.read_text()[:10])
    _again, cached = profile_entry(spec, arch, target, settings, tmp_path)
    assert not cached and json.loads(path.read_text())["payload"]["code"] == "k3_e1"


def test_tvm_entry_is_built_and_timed_with_tvm(lut_cache, tmp_path, K):
    arch = template_arch("fbnet", K.SHAPE)
    spec = next(s for s in unique_specs(*plan(arch, ["k3_e1"])) if s.kind == "unit" and s.inputs[0][2] == 2)
    record, cached = profile_entry(
        spec, arch, load_target("cpu"), ProfileSettings(target="cpu", threads=1, protocol=K.FAST), tmp_path
    )
    assert not cached and record["measured"] and record["latency"]["min_ms"] > 0


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"units": ["k9"]}, "--units: k9 not in the fbnet space"),
        ({"statistic": "mode"}, "--statistic 'mode'"),
        ({"backbone": "small"}, "--backbone applies to the squeezenas space only"),
    ],
)
def test_bad_build_options(tmp_path, kwargs, words, K):
    settings = ProfileSettings(target="cpu-ort", threads=1, protocol=K.FAST)
    with pytest.raises(UserError, match=words):
        build_lut("fbnet", tmp_path / "x.json", settings, K.SHAPE, cache=tmp_path, **kwargs)
    assert not (tmp_path / "x.json").exists()


def test_bad_input_shape_names_the_option(tmp_path, K):
    with pytest.raises(UserError, match="input_shape"):
        build_lut("fbnet", tmp_path / "x.json", ProfileSettings(), (1, 3, 30, 30), cache=tmp_path)


@pytest.mark.slow
def test_tvm_tuning_while_profiling_fills_the_database(lut_cache, tmp_path, K):
    """Tuning a unit's workloads while building its entry leaves records a later build applies."""
    arch = template_arch("fbnet", K.SHAPE)
    spec = next(s for s in unique_specs(*plan(arch, ["k3_e1"])) if s.kind == "unit" and s.inputs[0][2] == 2)
    db = tmp_path / "db"
    settings = ProfileSettings(
        target="cpu", threads=1, protocol=K.FAST, tune_trials=4, trials_per_task=1, tuning_db=str(db)
    )
    record, _ = profile_entry(spec, arch, load_target("cpu"), settings, tmp_path / "cache")
    assert record["measured"]
    assert (db / "database_tuning_record.json").is_file() and (db / "database_tuning_record.json").read_text().strip()
