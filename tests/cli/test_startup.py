"""A command pays only for what it uses: the command line starts without the heavy libraries.

torch (through onnxsim), TVM and ONNX Runtime take seconds to import; they are imported in the
functions that use them, so ``--help``, ``targets``, ``passes`` and ``inspect`` never load them.
``--help`` and ``targets`` also leave out onnx_ir (which imports sympy) and matplotlib. Each case
runs in a fresh interpreter, since this test process has imported everything already. The start
times themselves are measured by bench/bench_startup.py, not here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO

HEAVY = ("torch", "tvm", "onnxsim", "onnxruntime")
GRAPH_LIBRARIES = ("onnx_ir", "sympy", "matplotlib", "scipy")

PROGRAM = """
import contextlib, io, json, sys
args = json.loads(sys.argv[1])
if args is None:
    import deploycc.cli.main
else:
    from deploycc.cli.main import main
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(args)
    assert code == 0, code
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(args: list[str] | None) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, json.dumps(args)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return {name.split(".")[0] for name in json.loads(result.stdout)}


@pytest.mark.parametrize(
    "args, left_out",
    [
        (None, HEAVY + GRAPH_LIBRARIES),  # import deploycc.cli.main
        (["--help"], HEAVY + GRAPH_LIBRARIES),
        (["targets", "--json"], HEAVY + GRAPH_LIBRARIES),
        (["passes", "--json"], HEAVY),
        (["inspect", "models/zoo/trained/street_ref.onnx", "--json"], HEAVY + GRAPH_LIBRARIES),
    ],
)
def test_a_command_imports_only_what_it_uses(args, left_out):
    loaded = _modules_after(args)
    assert not loaded & set(left_out), f"{args}: imported {sorted(loaded & set(left_out))}"
