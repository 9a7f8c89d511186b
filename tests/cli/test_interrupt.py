"""An interrupted command exits 130 ("interrupted"), never 0, and leaves nothing half-written.

Typer, run as deploycc runs it (not in standalone mode), hands a KeyboardInterrupt back as the
return value 130; SIGTERM is turned into the same interrupt (``deploycc.core.children``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_data_synth_exits_130_and_writes_nothing(tmp_path, sig):
    out = tmp_path / "scenes"
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploycc.cli.main", "data", "synth", "-o", out, "--n", "400", "--size", "128x256"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(out.rglob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proc.poll() is None, "data synth ended before it was interrupted"
    proc.send_signal(sig)
    proc.wait(60)
    err = proc.stderr.read()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err[-1000:]
    assert not [p for p in out.rglob("*") if p.is_dir() and p.name.endswith(".partial")]
