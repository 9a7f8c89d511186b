"""The CI build cache and data-set cache under corruption and concurrency (real builds)."""

from __future__ import annotations

import shutil
import threading
from types import SimpleNamespace

from deploycc.ci.cache import BuildCache
from deploycc.ci.config import DataSource
from deploycc.ci.runner import _data_folder
from deploycc.core.cache import seal
from deploycc.pipeline.pipeline import BuildOptions, build


def _builder(model, calls):
    def run(out):
        calls.append(out)
        build(str(model), "cpu-ort", out, BuildOptions())

    return run


def test_bad_entry_json_and_unlisted_files_are_rebuilt(tmp_path, tiny_onnx, capsys):
    cache, calls = BuildCache(tmp_path / "builds"), []
    artifact, served = cache.store("ab" * 32, {"x": 1}, _builder(tiny_onnx, calls))
    assert not served and cache.lookup("ab" * 32) == (artifact, "hit")
    entry = cache.entry("ab" * 32) / "entry.json"
    for text, why in (
        ("[]", "not a sealed"),
        (seal("ci-build", "ab" * 32, []), "no manifest sha256"),
        (seal("ci-build", "cd" * 32, {"manifest_sha256": "0"}), "is not this entry's"),
    ):
        good = entry.read_text()
        entry.write_text(text)
        found, status = cache.lookup("ab" * 32)
        assert found is None and why in status, status
        assert why in capsys.readouterr().err
        artifact, _ = cache.store("ab" * 32, {"x": 1}, _builder(tiny_onnx, calls))
        assert entry.read_text() == good
    (artifact / "extra.so").write_bytes(b"not listed in the manifest")
    found, status = cache.lookup("ab" * 32)
    assert found is None and "unlisted file extra.so" in status


def test_two_runs_on_one_entry_build_it_once(tmp_path, tiny_onnx):
    cache, calls, results = BuildCache(tmp_path / "builds"), [], []
    runs = [
        threading.Thread(target=lambda: results.append(cache.store("ef" * 32, {}, _builder(tiny_onnx, calls))))
        for _ in range(2)
    ]
    for t in runs:
        t.start()
    for t in runs:
        t.join(300)
    assert len(calls) == 1 and sorted(served for _, served in results) == [False, True]
    assert cache.lookup("ef" * 32)[1] == "hit"


def test_cached_synthetic_data_is_verified_each_use(tmp_path, capsys):
    cfg = SimpleNamespace(cache=tmp_path)
    source = DataSource(synth={"n": 2, "size": (32, 64), "seed": 1})
    folder = _data_folder(cfg, source, "val", None)
    label = next(folder.rglob("*labelIds.png"))
    original = label.read_bytes()
    label.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # a relabelled image
    (folder / "stray.png").write_bytes(b"x")
    assert _data_folder(cfg, source, "val", None) == folder
    assert label.read_bytes() == original and not (folder / "stray.png").exists()
    assert "corrupt" in capsys.readouterr().err


def test_planted_links_in_the_ci_caches_are_removed_as_links(tmp_path, tiny_onnx, capsys):
    """A build entry or a data set that is a symlink: reported, the link removed, the entry rebuilt;
    the folder it pointed to is neither read, written nor deleted."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("mine")
    cache, calls = BuildCache(tmp_path / "builds"), []
    entry = cache.entry("ab" * 32)
    entry.parent.mkdir(parents=True)
    entry.symlink_to(victim)
    assert cache.lookup("ab" * 32)[0] is None and "symbolic link" in capsys.readouterr().err
    artifact, served = cache.store("ab" * 32, {"x": 1}, _builder(tiny_onnx, calls))
    assert not served and cache.lookup("ab" * 32) == (artifact, "hit") and not entry.is_symlink()
    cfg = SimpleNamespace(cache=tmp_path / "ci")
    source = DataSource(synth={"n": 1, "size": (32, 64), "seed": 1})
    folder = _data_folder(cfg, source, "val", None)
    for p in sorted(folder.parent.iterdir()):
        p.unlink() if p.is_file() else shutil.rmtree(p)
    folder.symlink_to(victim)
    assert _data_folder(cfg, source, "val", None) == folder and not folder.is_symlink()
    assert sorted(p.name for p in victim.iterdir()) == ["thesis.tex"]
