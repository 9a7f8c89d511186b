"""Import TVM's tensor-intrinsic tables in seconds, not minutes (CPython issue 92041).

``tvm.s_tir.tensor_intrin`` registers a few hundred intrinsics at import time, each one a
``@T.prim_func``, and TVMScript's ``prim_func`` calls ``inspect.stack()``. For every frame whose
file does not exist (``<frozen importlib._bootstrap>`` while a module is imported, ``<string>``
under ``python -c``), ``inspect.getmodule`` scans all of ``sys.modules`` and finds no module, and
it never caches that answer. A build has torch, onnx and TVM loaded (about 2,800 modules), so the
import that dlight's Matmul rule makes for a float16 CUDA build (the V100's) took 165 s here
(load average 9), and most of an 18-minute lat_small build under cProfile.

:func:`import_tensor_intrinsics` imports the tables once with ``inspect``'s file-to-module cache
holding those pseudo files, each mapped to a name that is no module: ``getmodule`` then returns
None at once, the answer its scan gives, so nothing TVM reads from the stack changes (15 s at
the same load). The entries are removed again afterwards.
"""

from __future__ import annotations

import inspect
import sys
from types import FrameType

FROZEN_IMPORT_FILES = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def import_tensor_intrinsics() -> None:
    """Import ``tvm.s_tir.tensor_intrin`` (a no-op once imported)."""
    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    added = [name for name in _pseudo_files() if name not in inspect.modulesbyfile]
    for name in added:
        inspect.modulesbyfile[name] = name  # no module has this name: getmodule answers None
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        for name in added:
            inspect.modulesbyfile.pop(name, None)


def _pseudo_files() -> set[str]:
    """The frozen import machinery's files and every ``<...>`` file on the current stack."""
    names = set(FROZEN_IMPORT_FILES)
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        if frame.f_code.co_filename.startswith("<"):
            names.add(frame.f_code.co_filename)
        frame = frame.f_back
    return names
