"""Every test file is collected: no folder of tests or sources is named like a build output.

pytest's default ``norecursedirs`` skips ``build``, ``dist``, ``venv``, ``node_modules`` and dot
folders; ruff and other linters exclude ``build/`` and ``dist/`` too. A test file under such a
folder is never run and nothing says so (tests/build/ hid 46 tests from CI that way). Here the
default run's collection is compared with the files on disk: a file may be missing from the
default run only when a marker deselected all of its tests on purpose (``-m "not slow"``), which
the unfiltered collection shows.
"""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import REPO

BUILD_OUTPUT_NAMES = {"build", "dist", "venv", "node_modules", "_build", "site-packages"}


def collected_files(*args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return set(re.findall(r"^(tests/\S+?\.py)::", result.stdout, flags=re.M))


def files_on_disk() -> set[str]:
    return {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("test_*.py") if "__pycache__" not in p.parts}


def test_every_test_file_is_collected_unless_a_marker_deselects_it():
    on_disk = files_on_disk()
    everything = collected_files()
    default_run = collected_files("-m", "not slow")
    assert on_disk - everything == set(), f"never collected (a folder pytest skips?): {sorted(on_disk - everything)}"
    only_slow = everything - default_run
    assert default_run and only_slow <= everything
    for name in sorted(only_slow):  # deselected files hold slow tests only
        text = (REPO / name).read_text()
        assert "pytest.mark.slow" in text or "pytestmark" in text, f"{name} left out of the default run unmarked"


def test_no_source_or_test_folder_is_named_like_a_build_output():
    roots = [REPO / name for name in ("deploycc", "passes", "targets", "models", "tests", "bench", "tools")]
    named = [
        str(p.relative_to(REPO))
        for root in roots
        for p in root.rglob("*")
        if p.is_dir() and not p.is_symlink() and p.name in BUILD_OUTPUT_NAMES
    ]
    assert named == [], f"folders named like build outputs (pytest and linters skip them): {named}"
