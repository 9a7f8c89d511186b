"""Scratch folders in the temp dir that a killed run does not leave behind for good.

Every scratch folder is named ``deploycc-<pid>-<kind>...``; :func:`clean_stale_scratch` (called
at the start of every build) removes those whose process is gone, so a ``kill -9`` costs disk
only until the next run. A folder of a live process, or of a pid reused by another process, is
left alone. Hand-written (a few lines over ``tempfile``): no library ties a temp dir to its pid.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

_NAME = re.compile(r"deploycc-(\d+)-")


def scratch_dir(kind: str = "") -> tempfile.TemporaryDirectory:
    """A TemporaryDirectory named after this process (``deploycc-<pid>-<kind>``)."""
    return tempfile.TemporaryDirectory(prefix=f"deploycc-{os.getpid()}-{kind + '-' if kind else ''}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clean_stale_scratch(folder: Path | None = None) -> list[Path]:
    """Remove the scratch folders of processes that no longer run; returns what was removed."""
    removed = []
    for path in Path(folder or tempfile.gettempdir()).glob("deploycc-*"):
        match = _NAME.match(path.name)
        if match and path.is_dir() and not path.is_symlink() and not pid_alive(int(match[1])):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
