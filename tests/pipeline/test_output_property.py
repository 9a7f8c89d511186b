"""Property: whatever already lies at ``-o`` (nothing, a file, a folder of the user's, a one-line
manifest, an artifact with a file the user added, a link, a pipe), ``deploycc build`` either
refuses in one line and changes nothing there, or (absent, an intact artifact, or --overwrite on
something that is not an input) writes an intact artifact. The seed is printed and replayable
(``DEPLOYCC_FUZZ_SEED``), as in test_bad_input_property."""

from __future__ import annotations

import os
import random
import shutil

from helpers import run_cli
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from deploycc.pipeline.artifact import is_artifact

SEED = int(os.environ.get("DEPLOYCC_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
KINDS = ["absent", "file", "user folder", "one-line manifest", "artifact", "artifact + user file", "link", "pipe"]


def _snapshot(path):
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not (path.is_dir() or path.is_file()):
        return ("special", os.lstat(path).st_mode)
    if path.is_file():
        return path.read_bytes()
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _plant(kind, out, data, tiny_onnx, tmp):
    name = data.draw(st.sampled_from(["notes.txt", "a b.txt", "[x]*.md", "sub/deep.bin"]))
    if kind == "file":
        out.write_text("mine")
    elif kind == "user folder":
        (out / name).parent.mkdir(parents=True)
        (out / name).write_text("mine")
    elif kind == "one-line manifest":
        out.mkdir()
        (out / "manifest.json").write_text('{"schema":"deploycc-artifact/1"}')
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("mine")
    elif kind.startswith("artifact"):
        assert run_cli(["build", tiny_onnx, "-t", "cpu-ort", "-o", out]) == 0
        if kind.endswith("user file"):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text("mine")
    elif kind == "link":
        (tmp / "elsewhere").mkdir(exist_ok=True)
        out.symlink_to(tmp / "elsewhere")
    elif kind == "pipe":
        os.mkfifo(out)


def test_what_lies_at_the_output_is_never_lost_without_overwrite(tmp_path_factory, tiny_onnx, capsys):
    with capsys.disabled():  # on the terminal in every run, not only in a failure's report
        print(f"\noutput property test: seed {SEED} (replay: DEPLOYCC_FUZZ_SEED={SEED})")
    seed(SEED)(_property)(tmp_path_factory, tiny_onnx, capsys)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
@given(data=st.data())
def _property(tmp_path_factory, tiny_onnx, capsys, data):
    tmp = tmp_path_factory.mktemp("o")
    out = tmp / data.draw(st.sampled_from(["out", "a.b", "out[1]", "x*"]))
    kind, overwrite = data.draw(st.sampled_from(KINDS)), data.draw(st.booleans())
    _plant(kind, out, data, tiny_onnx, tmp)
    capsys.readouterr()
    before = _snapshot(out)
    code = run_cli(["build", tiny_onnx, "-t", "cpu-ort", "-o", out] + (["--overwrite"] if overwrite else []))
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err, (SEED, kind, overwrite, err)
    if code == 2:
        assert len([ln for ln in err.splitlines() if ln.startswith("error:")]) == 1, err
        assert _snapshot(out) == before, (kind, overwrite)
    else:
        assert is_artifact(out), (kind, overwrite)
        assert overwrite or kind in ("absent", "artifact"), (kind, overwrite, "replaced without --overwrite")
    assert not [p.name for p in tmp.iterdir() if ".deploycc-" in p.name]
    if (tmp / "elsewhere").exists():
        assert list((tmp / "elsewhere").iterdir()) == []  # a link's target is never written into
    shutil.rmtree(tmp)
