"""A long-running command's children never outlive it (SIGTERM, SIGINT, kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

PARENT = """
import sys
from deploycc.core.children import run_child, terminate_as_interrupt
terminate_as_interrupt()
# a server that starts a worker of its own, as a forking RPC server does
code = run_child(["sh", "-c", "sleep 300 & echo $$ $! > " + sys.argv[1] + "; sleep 300"])
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_the_childs_whole_group_stops_with_the_command(tmp_path, sig):
    marker = tmp_path / "grandchild.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(marker)], cwd=os.getcwd())
    deadline = time.monotonic() + 60
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child, grandchild = (int(p) for p in marker.read_text().split())
    parent.send_signal(sig)
    parent.wait(30)
    # kill -9 runs no handler: the kernel's parent-death signal stops the direct child; the rest
    # is stopped by deploycc itself
    watched = child if sig == signal.SIGKILL else grandchild
    deadline = time.monotonic() + 20
    while _alive(watched) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(watched), f"process {watched} outlived the command ({sig.name})"
    if _alive(grandchild):
        os.kill(grandchild, signal.SIGKILL)
