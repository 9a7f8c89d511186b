"""targets/tvm/tensor_intrin_import.py: TVM's intrinsic tables imported with inspect's answer for
pseudo files cached, so that every ``@T.prim_func`` at import time stops scanning sys.modules."""

from __future__ import annotations

import inspect
import subprocess
import sys

from helpers import REPO

from deploycc.targets.tvm.tensor_intrin_import import FROZEN_IMPORT_FILES, _pseudo_files


def test_cached_answer_is_the_one_the_scan_gives():
    """getmodule finds no module for a frame's pseudo file; the cache entry gives that same None."""
    frame = sys._getframe()
    for name in FROZEN_IMPORT_FILES:
        assert name not in inspect.modulesbyfile
        scanned = inspect.getmodule(frame, name)
        inspect.modulesbyfile[name] = name
        try:
            cached = inspect.getmodule(frame, name)
        finally:
            del inspect.modulesbyfile[name]
        assert scanned is None and cached is None


def test_pseudo_files_include_code_run_from_a_string():
    found: dict = {}
    exec("found['names'] = _pseudo_files()", {"_pseudo_files": _pseudo_files, "found": found})
    assert {"<string>", *FROZEN_IMPORT_FILES} <= found["names"]


def test_import_registers_the_tensor_core_intrinsics_and_leaves_inspect_as_it_was():
    code = (
        "import inspect\n"
        "from deploycc.targets.tvm.tensor_intrin_import import import_tensor_intrinsics\n"
        "import_tensor_intrinsics()\n"
        "from tvm.s_tir import TensorIntrin\n"
        "TensorIntrin.get('wmma_sync_16x16x16_f16f16f32')\n"
        "print(sorted(k for k in inspect.modulesbyfile if k.startswith('<')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
