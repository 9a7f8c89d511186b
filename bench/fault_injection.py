"""Fault injection: does deploycc lose nothing, trust no corrupt cache and never crash on bad input?

Reruns the trials of issue 11 against the real ``deploycc`` command (subprocesses) and prints, per
row and per class (a row's text before its first ": "), how many trials were tried and how many
held, with the seed that drew them (``--seed`` reruns the same draw):

- kill -9 at a random moment of a fresh build (cpu-ort, cpu-int8): nothing or a sound artifact at
  the path; the rerun succeeds and leaves no staging folder beside the output and no scratch
  folder in the temp dir;
- kill -9 during a rebuild over an existing artifact: a sound artifact is at the path afterwards;
- concurrent builds (2-4) to one output: all exit 0 and the output is sound;
- two ``lut build`` runs on one cache: both exit 0, their LUTs agree, each entry timed once;
- corrupted caches (calibration ranges, LUT records, CI build entries, CI data sets): the next run
  reports the entry, rebuilds it and succeeds, or (calibration ranges resealed with a valid hash
  but nonsense values) the build refuses the artifact;
- malformed models and bad option values, in process: exit 0 or 2, never a traceback;
- the hostile-user classes of issue 25 (``bench/hostile_trials.py``): user files lost, caches
  followed where they lead, unlisted native code loaded, hostile inputs, processes on SIGTERM,
  litter of killed runs, reproducibility across machines, the FP32 floor.

Usage: python bench/fault_injection.py [--kills N] [--models N] [--seed S] [--hostile-only]
Run it under ``flock /work/.bench.lock`` with nothing else timing; it takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

DEPLOYCC = [sys.executable, "-m", "deploycc.cli.main"]


class Tally:
    def __init__(self):
        self.rows: dict[str, list[int]] = {}
        self.notes: dict[str, list[str]] = {}

    def add(self, row: str, held: bool, why: str = "") -> None:
        tried_held = self.rows.setdefault(row, [0, 0])
        tried_held[0] += 1
        tried_held[1] += bool(held)
        if not held and why:
            self.notes.setdefault(row, []).append(why[:200])

    def classes(self) -> dict[str, list[int]]:
        """Tried/held summed per class: a row's text before its first ": " (the whole row if none)."""
        out: dict[str, list[int]] = {}
        for row, (tried, held) in self.rows.items():
            total = out.setdefault(row.split(": ", 1)[0], [0, 0])
            total[0] += tried
            total[1] += held
        return out

    def print(self, seed: int) -> None:
        for title, rows in (("trial", self.rows), ("class", self.classes())):
            width = max(len(r) for r in rows)
            print(f"\n{title.ljust(width)}  tried  held   (seed {seed})")
            for row, (tried, held) in rows.items():
                print(f"{row.ljust(width)}  {tried:5d}  {held:4d}" + ("" if tried == held else "   <- NOT HELD"))
        for row, notes in self.notes.items():
            for note in notes[:3]:
                print(f"  {row}: {note}")


def tiny_model(path: Path, size: int = 32) -> Path:
    """Conv-BN-ReLU-Conv at 1x3xSxS with fixed random weights (an image input, so INT8 calibrates)."""
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32) * 0.3, n)
        for n, s in (("w1", (8, 3, 3, 3)), ("s", (8,)), ("b", (8,)), ("m", (8,)), ("w2", (4, 8, 1, 1)))
    ]
    inits.append(numpy_helper.from_array(np.abs(rng.standard_normal(8)).astype(np.float32) + 0.5, "v"))
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn1"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu1"),
        helper.make_node("Conv", ["r", "w2"], ["logits"], name="conv2"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", 1, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", 1, [1, 4, size, size])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return path


def env_for(cache: Path, tmp: Path) -> dict:
    tmp.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "DEPLOYCC_CACHE": str(cache), "TMPDIR": str(tmp), "PYTHONWARNINGS": "ignore"}


def run(args, env, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(DEPLOYCC + [str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout)


def sound(path: Path) -> bool:
    from deploycc.core.errors import UserError
    from deploycc.pipeline.artifact import read_manifest

    try:
        return bool(read_manifest(path)["verification"]["ok"])
    except UserError:
        return False


def litter(out: Path, tmp: Path) -> list[str]:
    beside = [p.name for p in out.parent.glob(f".{out.name}.*")]
    scratch = [p.name for p in tmp.glob("deploycc-*")]
    return beside + scratch


def kill_trials(t: Tally, work: Path, model: Path, n: int, rng: random.Random) -> None:
    for target in ("cpu-ort", "cpu-int8"):
        cache = work / f"cache-kill-{target}"
        start = time.perf_counter()
        base = run(["build", model, "-t", target, "-o", work / f"ref-{target}"], env_for(cache, work / "tmp-ref"))
        full = time.perf_counter() - start
        assert base.returncode == 0, base.stderr
        shutil.rmtree(cache)  # the kills also hit the first calibration and its cache write
        for i in range(n):
            folder = work / f"kill-{target}-{i}"
            out, tmp = folder / "out", folder / "tmp"
            env = env_for(cache, tmp)
            existing = i % 2 == 1
            if existing:
                assert run(["build", model, "-t", target, "-o", out], env).returncode == 0
            proc = subprocess.Popen(
                [*DEPLOYCC, "build", str(model), "-t", target, "-o", str(out)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.0, full))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            after_kill = sound(out) if out.exists() else not existing
            row = f"kill -9 rebuild over an artifact ({target})" if existing else f"kill -9 fresh build ({target})"
            t.add(row, after_kill, "no sound artifact at the path after the kill")
            again = run(["build", model, "-t", target, "-o", out], env)
            left = litter(out, tmp)
            t.add(
                f"rerun after kill: exit 0, sound, no litter ({target})",
                again.returncode == 0 and sound(out) and not left,
                f"rc {again.returncode} litter {left} {again.stderr[-200:]}",
            )


def concurrency_trials(t: Tally, work: Path, model: Path, n: int) -> None:
    for i in range(n):
        k = 2 + i % 3
        folder = work / f"conc-{i}"
        env = env_for(work / "cache-conc", folder / "tmp")
        procs = [
            subprocess.Popen(
                [*DEPLOYCC, "build", str(model), "-t", "cpu-int8", "-o", str(folder / "out")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(k)
        ]
        codes = [p.wait(900) for p in procs]
        t.add(
            "concurrent builds (2-4) to one output",
            all(c == 0 for c in codes) and sound(folder / "out"),
            f"exit codes {codes}",
        )


def lut_concurrency(t: Tally, work: Path, n: int) -> None:
    for i in range(n):
        folder = work / f"lut-{i}"
        env = env_for(work / f"cache-lut-{i}", folder / "tmp")
        args = [
            "lut",
            "build",
            "--space",
            "fbnet",
            "--input-shape",
            "1x3x32x32",
            "--units",
            "k3_e1,k3_e6",
            "-t",
            "cpu-ort",
            "--max-repeats",
            "8",
            "--cache",
            folder / "cache",
        ]
        procs = [
            subprocess.Popen(
                DEPLOYCC + [str(a) for a in args] + ["-o", str(folder / f"lut{j}.json")],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for j in (0, 1)
        ]
        codes = [p.wait(1800) for p in procs]
        ok = codes == [0, 0]
        if ok:
            a, b = (json.loads((folder / f"lut{j}.json").read_text())["entries"] for j in (0, 1))
            ok = a == b
        t.add("two lut build on one cache: both exit 0, same entries", ok, f"exit codes {codes}")


def _reseal(path: Path, edit) -> None:
    """Edit the payload and seal it again with a valid hash (a deliberate, consistent edit)."""
    from deploycc.core.cache import seal

    entry = json.loads(path.read_text())
    path.write_text(seal(entry["schema"].split("/")[1], entry["key"], edit(entry["payload"])))


def _keep_hash(path: Path, edit) -> None:
    """Edit the payload and keep the old hash (what a bit rot or a hand edit does)."""
    entry = json.loads(path.read_text())
    path.write_text(json.dumps({**entry, "payload": edit(entry["payload"])}))


def _scale_ranges(payload, factor=None, swap=False):
    for td in payload["data"].values():
        lo, hi = td["lowest"], td["highest"]
        lo, hi = (lo["data"] if isinstance(lo, dict) else lo), (hi["data"] if isinstance(hi, dict) else hi)
        if swap:
            td["lowest"], td["highest"] = td["highest"], td["lowest"]
        if factor:
            for key in ("lowest", "highest"):
                v = td[key]
                if isinstance(v, dict):
                    v["data"] = (np.asarray(v["data"]) * factor).tolist()
                else:
                    td[key] = v * factor
    return payload


TEXT_EDITS = {
    "truncate": lambda s: s[: len(s) // 2],
    "garbage": lambda s: "\x00\xffgarbage",
    "empty list": lambda s: "[]",
}


def corruption_trials(t: Tally, work: Path, model: Path) -> None:
    cache = work / "cache-corrupt"
    env = env_for(cache, work / "tmp-corrupt")
    out = work / "corrupt-out"
    assert run(["build", model, "-t", "cpu-int8", "-o", out], env).returncode == 0
    (entry,) = (cache / "calibration").glob("*.json")
    good = entry.read_text()
    edits = {
        **{k: (lambda p, f=f: p.write_text(f(good))) for k, f in TEXT_EDITS.items()},
        "flip a byte": lambda p: p.write_bytes(
            good.encode()[:200] + bytes([good.encode()[200] ^ 4]) + good.encode()[201:]
        ),
        "x1000 (hash kept)": lambda p: _keep_hash(p, lambda q: _scale_ranges(q, factor=1000.0)),
        "min/max swapped (hash kept)": lambda p: _keep_hash(p, lambda q: _scale_ranges(q, swap=True)),
    }
    for name, edit in edits.items():
        entry.write_text(good)
        edit(entry)
        r = run(["build", model, "-t", "cpu-int8", "-o", out], env)
        t.add(
            "calibration ranges corrupted: reported, rebuilt, exit 0",
            r.returncode == 0 and "corrupt" in r.stderr and sound(out),
            f"{name}: rc {r.returncode} {r.stderr[-200:]}",
        )
    for name, edit in (
        ("x1000 resealed", lambda p: _scale_ranges(p, factor=1000.0)),
        ("min/max swapped resealed", lambda p: _scale_ranges(p, swap=True)),
    ):
        entry.write_text(good)
        _reseal(entry, edit)
        r = run(["build", model, "-t", "cpu-int8", "-o", work / f"resealed-{name[:4]}"], env)
        held = (r.returncode == 0 and "corrupt" in r.stderr) or (
            r.returncode in (1, 2) and not (work / f"resealed-{name[:4]}").exists()
        )
        t.add(
            "calibration ranges resealed with nonsense: refused or rebuilt",
            held,
            f"{name}: rc {r.returncode} {r.stderr[-200:]}",
        )
    entry.write_text(good)
    lut_corruptions(t, work)


def lut_corruptions(t: Tally, work: Path) -> None:
    folder = work / "lut-corrupt"
    env = env_for(work / "cache-lutc", folder / "tmp")
    args = [
        "lut",
        "build",
        "--space",
        "fbnet",
        "--input-shape",
        "1x3x32x32",
        "--units",
        "k3_e1",
        "-t",
        "cpu-ort",
        "--max-repeats",
        "8",
        "--cache",
        folder / "cache",
        "-o",
        folder / "lut.json",
    ]
    assert run(args, env).returncode == 0
    records = sorted((folder / "cache" / "entries").glob("*.json"))
    edits = {
        "garbage": lambda p: p.write_text("\x00garbage"),
        "truncate": lambda p: p.write_text(p.read_text()[:40]),
        "median 1e6 (hash kept)": lambda p: _keep_hash(
            p, lambda r: {**r, "latency": {**r["latency"], "median_ms": 1e6}}
        ),
        "median 1e6 resealed": lambda p: _reseal(p, lambda r: {**r, "latency": {**r["latency"], "median_ms": 1e6}}),
        "median -5 resealed": lambda p: _reseal(p, lambda r: {**r, "latency": {**r["latency"], "median_ms": -5}}),
        "measured false resealed": lambda p: _reseal(p, lambda r: {**r, "measured": False}),
    }
    for name, edit in edits.items():
        path = records[0]
        edit(path)
        r = run(args, env)
        t.add(
            "LUT record corrupted: reported, timed again, exit 0",
            r.returncode == 0
            and "corrupt" in r.stderr
            and json.loads(path.read_text())["payload"]["latency"]["median_ms"] > 0
            and json.loads(path.read_text())["payload"]["latency"]["median_ms"] < 1e5,
            f"{name}: rc {r.returncode}",
        )


def model_fuzz(t: Tally, work: Path, model: Path, n: int, rng: random.Random) -> None:
    """Malformed models and bad options through the CLI in process: exit 0 or 2, never an exception."""
    from deploycc.cli.main import main

    raw = model.read_bytes()
    options = [
        [],
        ["--threads", "-4"],
        ["--calib-images", "0"],
        ["--max-miou-drop", "nan"],
        ["--tune-trials", "10"],
        ["--calib-data", "/nope"],
        ["--calib-method", "bogus"],
        ["--input-shape", "1x3x100000x100000"],
        ["-t", "cpu-int8", "--calib-images", "-5"],
        ["-t", "cpu-int8", "--max-miou-drop", "-1"],
        ["--tuning-db", "X"],
        ["--trials-per-task", "-2"],
        ["-t", "cpu-int8", "--calib-method", "bogus"],
    ]
    for i in range(n):
        folder = work / f"fuzz-{i}"
        folder.mkdir()
        data = bytearray(raw)
        kind = i % 3
        if kind == 0:
            data = data[: rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(rng.randint(1, 4)):
                j = rng.randrange(min(400, len(data)))
                data[j] ^= 1 << rng.randrange(8)
        else:
            m = onnx.load_from_string(bytes(raw))
            dim = m.graph.input[0].type.tensor_type.shape.dim[rng.randrange(4)]
            dim.dim_value = rng.choice([0, -1, 2**31, 2**40])
            data = m.SerializeToString()
        (folder / "m.onnx").write_bytes(bytes(data))
        opts = rng.choice(options)
        try:
            code = main(["build", str(folder / "m.onnx"), "-t", "cpu-ort", "-o", str(folder / "out"), *opts])
            held = code in (0, 2) and (code == 0) == (folder / "out").exists()
            why = f"exit {code}"
        except BaseException as exc:
            held, why = False, f"{type(exc).__name__}: {str(exc)[:120]}"
        row = "malformed model" if not opts else "malformed model + bad option"
        t.add(f"{row}: exit 0 or 2, no traceback", held, f"{['truncate', 'bitflip', 'dims'][kind]} {opts}: {why}")


def hostile_classes(t: Tally, work: Path, model: Path, rng: random.Random) -> None:
    import hostile_trials as h

    for trial in (h.user_files, h.caches, h.unlisted_code, h.inputs, h.litter, h.reproducible):
        trial(t, work, model, run, env_for, rng)
    h.processes(t, work, model, env_for, DEPLOYCC, rng)
    h.floor(t, work, model, run, env_for, rng, _reseal, _scale_ranges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=12, help="kill trials per target (half over an artifact)")
    parser.add_argument("--concurrent", type=int, default=6)
    parser.add_argument("--luts", type=int, default=2)
    parser.add_argument("--models", type=int, default=75)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hostile-only", action="store_true", help="run only the hostile-user classes")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"fault injection, seed {seed}; load {os.getloadavg()}")
    rng = random.Random(seed)
    t = Tally()
    work = Path(tempfile.mkdtemp(prefix="fault-injection-"))
    try:
        model = tiny_model(work / "tiny.onnx")
        started = time.perf_counter()
        if not args.hostile_only:
            kill_trials(t, work, model, args.kills, rng)
            concurrency_trials(t, work, model, args.concurrent)
            lut_concurrency(t, work, args.luts)
            corruption_trials(t, work, model)
            model_fuzz(t, work, model, args.models, rng)
        hostile_classes(t, work, model, rng)
        t.print(seed)
        print(f"\n{time.perf_counter() - started:.0f} s; load {os.getloadavg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
