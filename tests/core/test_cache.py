"""The verified cache layer: sealed entries, range checks, atomic writes, folder listings, locks."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from deploycc.core.cache import (
    FolderCache,
    JsonCache,
    environment,
    finite,
    folder_listing,
    folder_problem,
    lock_for,
    seal,
    unseal,
)


def _positive(payload):
    return None if finite(payload.get("ms"), positive=True) else f"ms {payload.get('ms')!r} is not positive"


def test_round_trip_and_key_includes_environment(tmp_path):
    cache = JsonCache(tmp_path, "demo", _positive)
    cache.put("k1", {"ms": 1.5})
    assert cache.get("k1") == {"ms": 1.5}
    assert cache.get("absent") is None
    env = environment()
    assert set(env) == {"deploycc_source", "cpu", "machine"} and len(env["deploycc_source"]) == 64


@pytest.mark.parametrize(
    "corrupt, why",
    [
        (lambda text: text[: len(text) // 2], "not JSON"),
        (lambda text: "[]", "not a sealed"),
        (lambda text: b"\xff\xfe garbage".decode("latin-1"), "not JSON"),
        (lambda text: text.replace("1.5", "1000000.0"), "does not match its sha256"),
        (lambda text: seal("demo", "k1", {"ms": -5}), "is not positive"),
        (lambda text: seal("demo", "k1", {"ms": float("nan")}), "is not positive"),
        (lambda text: seal("demo", "other", {"ms": 1.5}), "is not this entry's"),
        (lambda text: seal("other-kind", "k1", {"ms": 1.5}), "is not this entry's"),
    ],
)
def test_bad_entry_is_reported_removed_and_absent(tmp_path, capsys, corrupt, why):
    cache = JsonCache(tmp_path, "demo", _positive)
    cache.put("k1", {"ms": 1.5})
    path = cache.path("k1")
    path.write_text(corrupt(path.read_text()))
    assert cache.get("k1") is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and why in err[0] and str(path) in err[0] and "rebuilding" in err[0]
    assert not path.exists()


def test_unseal_rejects_non_dict_entries():
    for text in ("null", "3", '"x"', json.dumps({"schema": 1})):
        assert unseal(text, "demo", "k")[1]


def test_write_is_atomic_no_temporary_left(tmp_path):
    cache = JsonCache(tmp_path, "demo")
    for i in range(3):
        cache.put("k", {"i": i})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]


def test_folder_listing_refuses_changed_missing_and_unlisted_files(tmp_path):
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.txt").write_text("b")
    listing = folder_listing(folder)
    assert folder_problem(folder, listing) is None
    (folder / "extra.txt").write_text("x")
    assert "unlisted file extra.txt" in folder_problem(folder, listing)
    (folder / "extra.txt").unlink()
    (folder / "sub" / "b.txt").write_text("B")
    assert "sub/b.txt does not match" in folder_problem(folder, listing)
    (folder / "sub" / "b.txt").unlink()
    assert "sub/b.txt is missing" in folder_problem(folder, listing)


def test_folder_cache_regenerates_an_edited_entry(tmp_path, capsys):
    made = []

    def make(folder):
        made.append(1)
        folder.mkdir(parents=True)
        (folder / "label.png").write_bytes(b"labels")

    cache = FolderCache(tmp_path, "data")
    folder, hit = cache.get_or_make("k", make)
    assert not hit and cache.get_or_make("k", make) == (folder, True)
    (folder / "label.png").write_bytes(b"relabelled")
    assert cache.get_or_make("k", make) == (folder, False)
    assert (folder / "label.png").read_bytes() == b"labels" and len(made) == 2
    assert "does not match its sha256" in capsys.readouterr().err


def _hold(path, seconds, started):
    with lock_for(path):
        started.set()
        time.sleep(seconds)


def test_entry_lock_makes_a_second_process_wait(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path / "entry", 1.0, started))
    holder.start()
    assert started.wait(60)
    t0 = time.monotonic()
    with lock_for(tmp_path / "entry"):
        waited = time.monotonic() - t0
    holder.join(30)
    assert waited > 0.3


@pytest.mark.parametrize(
    "value, positive, ok",
    [
        (1.0, True, True),
        (0.0, True, False),
        (-1, False, True),
        (float("inf"), False, False),
        (True, False, False),
        ("1", False, False),
        (None, False, False),
    ],
)
def test_finite(value, positive, ok):
    assert finite(value, positive) is ok


def test_links_and_special_files_are_never_followed_read_or_deleted_into(tmp_path, capsys):
    """A cache holds data, never paths: a planted link is removed as a link, its target untouched."""
    import os

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("mine")
    (victim / "k.json").write_text(seal("demo", "k", {"ms": 1.0}))
    cache = JsonCache(tmp_path / "c", "demo", _positive)
    cache.root.mkdir()
    cache.path("k").symlink_to(victim / "k.json")
    assert cache.get("k") is None and "symbolic link" in capsys.readouterr().err
    assert not os.path.lexists(cache.path("k")) and (victim / "k.json").exists()
    os.mkfifo(cache.path("f"))  # a pipe would block a reader forever
    assert cache.get("f") is None and "special file" in capsys.readouterr().err
    folders = FolderCache(tmp_path / "d", "demo")
    folders.root.mkdir()
    (folders.root / "e").symlink_to(victim)
    made = []
    folder, served = folders.get_or_make("e", lambda f: (made.append(f), f.mkdir(), (f / "x").write_text("x")))
    assert not served and made and not folder.is_symlink() and (folder / "x").read_text() == "x"
    assert sorted(p.name for p in victim.iterdir()) == ["k.json", "thesis.tex"]
    (folder / "inner").symlink_to(victim / "thesis.tex")
    assert "symbolic link" in folder_problem(folder, folder_listing(folder))
