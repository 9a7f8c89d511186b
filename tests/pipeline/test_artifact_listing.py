"""Nothing unlisted runs: an artifact folder that does not hold exactly the files its manifest
lists is refused (exit 2) before any native code in it is loaded."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from helpers import run_cli

from deploycc.core.errors import Unavailable
from deploycc.pipeline.pipeline import build

CONSTRUCTOR = """
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    FILE *f = fopen(getenv("PLANTED_MARKER"), "w");
    if (f) { fputs("ran", f); fclose(f); }
}
"""


def _planted_library(tmp_path):
    if shutil.which("cc") is None:
        pytest.skip("no C compiler here to make a library with a constructor")
    (tmp_path / "planted.c").write_text(CONSTRUCTOR)
    lib = tmp_path / "planted.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", lib, tmp_path / "planted.c"], check=True)
    return lib


def _run(capsys, art, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 16, 16), np.float32))
    code = run_cli(["run", art, "-i", x, "-o", tmp_path / "y.npy"])
    return code, capsys.readouterr().err.strip()


def test_a_library_swapped_in_and_dropped_from_the_list_is_never_loaded(tmp_path, tiny_onnx, capsys, monkeypatch):
    monkeypatch.setenv("DEPLOYCC_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "marker"
    monkeypatch.setenv("PLANTED_MARKER", str(marker))
    try:
        manifest = build(str(tiny_onnx), "cpu", tmp_path / "art").manifest
    except Unavailable as exc:
        pytest.skip(f"TVM does not build here: {exc}")
    art = tmp_path / "art"
    (library,) = [name for name in manifest["files"] if name.endswith(".so")]
    # swapped as a new file: this process still maps the built library (the build verified it), and
    # writing over a mapped library in place would crash the test run at exit (SIGBUS)
    (art / library).unlink()
    shutil.copyfile(_planted_library(tmp_path), art / library)
    listed = json.loads((art / "manifest.json").read_text())
    del listed["files"][library]
    (art / "manifest.json").write_text(json.dumps(listed))
    code, err = _run(capsys, art, tmp_path)
    assert code == 2 and f"unlisted file {library}" in err and len(err.splitlines()) == 1, err
    assert not marker.exists(), "the planted library's constructor ran"


@pytest.mark.parametrize("case", ["unlisted", "missing", "link"])
def test_a_folder_that_is_not_exactly_its_listing_is_refused(tmp_path, tiny_onnx, capsys, case):
    art = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", art)
    if case == "unlisted":
        shutil.copyfile(_planted_library(tmp_path), art / "extra.so")
        needle = "unlisted file extra.so"
    elif case == "missing":
        (art / "model.onnx").unlink()
        needle = "model.onnx listed in the manifest is missing"
    else:
        (art / "elsewhere").symlink_to(tmp_path)
        needle = "elsewhere is a link or special file"
    code, err = _run(capsys, art, tmp_path)
    assert code == 2 and needle in err and "Traceback" not in err, err
