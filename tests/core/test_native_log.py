"""Native code's output on descriptor 2 goes to the build log; Python's sys.stderr stays on the console."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO

PROGRAM = """
import json, os, sys
from deploycc.core.native_log import native_stderr_into
lines = []
print("before", file=sys.stderr, flush=True)
with native_stderr_into(lines):
    os.write(2, b"a native warning\\n\\n")  # what C++ writes to std::cerr
    print("a note for the user", file=sys.stderr)
print("after", file=sys.stderr, flush=True)
print(json.dumps(lines))
"""


def test_descriptor_2_is_captured_and_python_stderr_still_reaches_the_console():
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(result.stdout) == ["a native warning"]
    assert result.stderr.splitlines() == ["before", "a note for the user", "after"]
