"""Hostile-user trials of issue 25 for ``bench/fault_injection.py``: one row per class, each trial
drawn from the seeded ``rng`` where it can be, run against the real ``deploycc`` command.

Classes: user files lost (output policy) · caches followed where they lead · unlisted native code
loaded · hostile inputs (special files, image bombs, bad names, unbounded numbers) · processes
(SIGTERM) · litter of killed runs · reproducible across machines · the FP32 floor (distorted
calibration ranges resealed).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np

HELD_EXIT = (1, 2)


def _one_line_exit_2(r) -> bool:
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.startswith(("error:", "internal error:"))]
    return r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr


def _files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def user_files(t, work: Path, model: Path, run, env_for, rng) -> None:
    """Nothing of the user's is replaced without --overwrite, never an input."""
    env = env_for(work / "cache-user", work / "tmp-user")
    for i in range(3):
        folder = work / f"user-{i}"
        folder.mkdir()
        mine = folder / "out"
        mine.mkdir()
        (mine / "manifest.json").write_text('{"schema":"deploycc-artifact/1"}')
        (mine / "thesis.tex").write_text(str(rng.random()))
        before = _files(mine)
        r = run(["build", model, "-t", "cpu-ort", "-o", mine], env)
        t.add(
            "user files: a one-line manifest does not make a folder ours",
            _one_line_exit_2(r) and _files(mine) == before,
        )
        art = folder / "art"
        assert run(["build", model, "-t", "cpu-ort", "-o", art], env).returncode == 0
        added = art / rng.choice(["notes.txt", "sub/notes.txt", "model.onnx.bak"])
        added.parent.mkdir(exist_ok=True)
        added.write_text("mine")
        r = run(["build", model, "-t", "cpu-ort", "-o", art], env)
        t.add("user files: a file added inside an artifact is kept", r.returncode == 2 and added.read_text() == "mine")
        existing = folder / rng.choice(["o.onnx", "x.npy", "r.html"])
        existing.write_text("mine")
        args = {
            ".onnx": ["optimize", model, "-o", existing],
            ".npy": ["run", art.with_name("art2"), "-i", folder / "in.npy", "-o", existing],
            ".html": ["inspect", model, "--report", existing],
        }[existing.suffix]
        if existing.suffix == ".npy":
            assert run(["build", model, "-t", "cpu-ort", "-o", art.with_name("art2")], env).returncode == 0
            np.save(folder / "in.npy", np.zeros((1, 3, 32, 32), np.float32))
        r = run(args, env)
        t.add(
            "user files: -o over an existing file needs --overwrite",
            _one_line_exit_2(r) and existing.read_text() == "mine",
        )
        r = run(["optimize", model, "-o", model, "--overwrite"], env)
        t.add("user files: -o equal to the input is refused", _one_line_exit_2(r))


def caches(t, work: Path, model: Path, run, env_for, rng) -> None:
    """A planted link in a cache is removed as a link; the folder it points to is untouched."""
    from deploycc.ci.cache import BuildCache
    from deploycc.core.cache import FolderCache, JsonCache

    victim = work / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("mine")
    before = _files(victim)
    for i in range(3):
        kind = rng.choice(["data set", "json entry", "ci build"])
        root = work / f"cache-link-{i}"
        if kind == "data set":
            cache = FolderCache(root, "ci-data")
            root.mkdir()
            (root / "k").symlink_to(victim)
            folder, _ = cache.get_or_make("k", lambda f: (f.mkdir(), (f / "x").write_text("x")))
            held = not folder.is_symlink()
        elif kind == "json entry":
            cache = JsonCache(root, "calibration")
            root.mkdir()
            cache.path("k").symlink_to(victim / "thesis.tex")
            held = cache.get("k") is None and not cache.path("k").is_symlink()
        else:
            cache = BuildCache(root)
            entry = cache.entry("ab" * 32)
            entry.parent.mkdir(parents=True)
            entry.symlink_to(victim)
            held = cache.lookup("ab" * 32)[0] is None and not entry.is_symlink()
        t.add("caches: a planted link is removed, never followed", held and _files(victim) == before, kind)
    env = env_for(work / "cache-tvm", work / "tmp-tvm")
    db = work / "tuning-db"
    r = run(["build", model, "-t", "cpu", "-o", work / "tvm-a", "--tuning-db", db, "--tune-trials", "2"], env)
    if r.returncode != 0:
        t.add("caches: an edited tuning database is set aside, exit 0", False, f"tuning failed: {r.stderr[-200:]}")
        return
    records = db / "database_tuning_record.json"
    lines = records.read_text().splitlines()
    edit = rng.choice(["truncate", "edit a time"])
    records.write_text(lines[0][: len(lines[0]) // 2] if edit == "truncate" else lines[0].replace("0.", "9.", 1))
    r = run(["build", model, "-t", "cpu", "-o", work / "tvm-b", "--tuning-db", db], env)
    t.add(
        "caches: an edited tuning database is set aside, exit 0",
        r.returncode == 0 and "tuning database" in r.stderr,
        edit,
    )


PLANTED = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(getenv("PLANTED_MARKER"), "w"); if (f) { fputs("ran", f); fclose(f); }
}
"""


def unlisted_code(t, work: Path, model: Path, run, env_for, rng) -> None:
    """A library swapped into an artifact and dropped from its list is never loaded."""
    (work / "planted.c").write_text(PLANTED)
    lib = work / "planted.so"
    if subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, work / "planted.c"]).returncode != 0:
        t.add("unlisted code: never loaded", False, "no C compiler")
        return
    env = env_for(work / "cache-so", work / "tmp-so")
    np.save(work / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    for target in ("cpu", "cpu-ort"):
        art = work / f"planted-{target}"
        assert run(["build", model, "-t", target, "-o", art], env).returncode == 0
        manifest = json.loads((art / "manifest.json").read_text())
        name = next((n for n in manifest["files"] if n.endswith(".so")), f"lib{rng.randrange(100)}.so")
        shutil.copyfile(lib, art / name)
        manifest["files"].pop(name, None)
        (art / "manifest.json").write_text(json.dumps(manifest))
        marker = work / f"marker-{target}"
        r = run(
            ["run", art, "-i", work / "x.npy", "-o", work / f"y-{target}.npy"], {**env, "PLANTED_MARKER": str(marker)}
        )
        t.add("unlisted code: refused before it is loaded", _one_line_exit_2(r) and not marker.exists(), target)


def _png_declaring(path: Path, width: int, height: int) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    i = data.index(b"IHDR")
    data[i + 4 : i + 12] = struct.pack(">II", width, height)
    data[i + 17 : i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i : i + 17])))
    path.write_bytes(bytes(data))
    return path


def inputs(t, work: Path, model: Path, run, env_for, rng) -> None:
    """Special files, image bombs, bad names and unbounded numbers: one line, exit 2, in time."""
    env = env_for(work / "cache-in", work / "tmp-in")
    os.mkfifo(work / "pipe.onnx")
    r = run(["build", work / "pipe.onnx", "-t", "cpu-ort", "-o", work / "o-pipe"], env, timeout=120)
    t.add("inputs: a pipe as the model", _one_line_exit_2(r))
    side = rng.randrange(9000, 60000)
    bomb = _png_declaring(work / "bomb.png", side, side)
    art = work / "in-art"
    assert run(["build", model, "-t", "cpu-ort", "-o", art], env).returncode == 0
    r = run(["predict", art, bomb, "-o", work / "pred"], env, timeout=120)
    t.add("inputs: an image header over the pixel bound", _one_line_exit_2(r) and "header declares" in r.stderr)
    name = "x" * rng.randrange(256, 400)
    r = run(["build", model, "-t", "cpu-ort", "-o", work / name], env)
    t.add("inputs: a name over the file system's limit", _one_line_exit_2(r))
    r = run(["build", model, "-t", "cpu-ort", "-o", f"{work}/a\x01b\x7fc"], env)  # odd but legal bytes
    t.add("inputs: odd characters in a name", r.returncode == 0)
    number = rng.choice(["threads = 100000000", "seed = -3", "threads = 1.5"])
    (work / "p.toml").write_text(
        f'targets = ["cpu-ort"]\n[project]\nname = "p"\n{number}\n[[models]]\nsource = "{model}"\n'
    )
    r = run(["ci", work / "p.toml", "-o", work / "ci-out"], env)
    t.add("inputs: a CI number out of range", _one_line_exit_2(r), number)


def processes(t, work: Path, model: Path, env_for, deploycc, rng) -> None:
    """SIGTERM at a random moment of a build: no staging folder left, exit not 0 or a sound artifact."""
    env = env_for(work / "cache-term", work / "tmp-term")
    for i in range(3):
        out = work / f"term-{i}" / "out"
        out.parent.mkdir()
        proc = subprocess.Popen(
            [*deploycc, "build", str(model), "-t", "cpu-int8", "-o", str(out)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        left = [p.name for p in out.parent.iterdir() if p.name.startswith(".")]
        t.add("processes: SIGTERM leaves no staging folder", not left, f"left {left}")


def litter(t, work: Path, model: Path, run, env_for, rng) -> None:
    """A dead run's staging is removed by the next command writing into the same folder."""
    env = env_for(work / "cache-lit", work / "tmp-lit")
    folder = work / "litter"
    folder.mkdir()
    dead = 2**22 + rng.randrange(2**20)  # above pid_max's default: no such process
    stale = folder / f".gone.deploycc-{dead}-{rng.randrange(16**6):06x}.partial"
    stale.mkdir()
    assert run(["build", model, "-t", "cpu-ort", "-o", folder / "other"], env).returncode == 0
    t.add("litter: a killed build's staging, next write into the folder", not stale.exists())
    synth = work / "synth"
    left = synth / f".synth-val.deploycc-{dead}-0a.partial"
    left.mkdir(parents=True)
    r = run(["data", "synth", "-o", synth, "--n", "1", "--size", "32x64"], env)
    t.add("litter: a killed data synth's staging, next synth", r.returncode == 0 and not left.exists())


def reproducible(t, work: Path, model: Path, run, env_for, rng) -> None:
    from deploycc.targets.target import TARGET_DIR

    for target in ("cpu", "cpu-ort", "cpu-int8"):
        outs = []
        for machine in ("a", "b"):
            checkout = work / f"repro-{machine}-{rng.randrange(1000)}" / "targets"
            checkout.mkdir(parents=True)
            toml = checkout / f"{target}.toml"
            toml.write_bytes((TARGET_DIR / f"{target}.toml").read_bytes())
            out = work / "repro-art"
            env = env_for(work / f"cache-repro-{machine}-{target}", work / "tmp-repro")
            assert run(["build", model, "-t", toml, "-o", out], env).returncode == 0
            outs.append(_files(out))
            shutil.rmtree(out)
        t.add("reproducible: two caches and checkouts, same bytes", outs[0] == outs[1], target)


def floor(t, work: Path, model: Path, run, env_for, rng, reseal, scale) -> None:
    """Calibration ranges scaled and resealed: the build must refuse or recalibrate."""
    cache = work / "cache-floor"
    env = env_for(cache, work / "tmp-floor")
    assert run(["build", model, "-t", "cpu-int8", "-o", work / "floor-ref"], env).returncode == 0
    (entry,) = (cache / "calibration").glob("*.json")
    good = entry.read_text()
    for i in range(3):
        factor = rng.choice([0.1, 0.25, 0.5, 2.0, 4.0, 11.0])
        entry.write_text(good)
        reseal(entry, lambda p, f=factor: scale(p, factor=f))
        out = work / f"floor-{i}"
        r = run(["build", model, "-t", "cpu-int8", "-o", out], env)
        t.add(
            "floor: distorted ranges resealed are refused",
            r.returncode in HELD_EXIT and not out.exists(),
            f"x{factor}: rc {r.returncode}",
        )
