"""What a compiler's native code prints, kept off the user's console and handed to the build log.

TVM's C++ ``LOG(WARNING)`` lines (``Warning: Creating JSONDatabase. Workload at: ...`` whenever a
tuning database is applied) are written straight to file descriptor 2, past Python's logging and
``sys.stderr``, so no Python-level setting reaches them. While the block runs, descriptor 2 goes
to a temporary file, and its lines are appended to ``lines`` afterwards; Python's own
``sys.stderr``, when it is descriptor 2, is pointed at a copy of the console for the while, so
deploycc's notes (a damaged database, tuning progress) and the stage status still reach the user.
Child processes started in the block (TVM's measurement workers) inherit the temporary file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def native_stderr_into(lines: list[str]) -> Iterator[None]:
    """Run the block with descriptor 2 captured; its non-blank lines are appended to ``lines``."""
    _flush(sys.stderr)
    try:
        console = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing reaches a console to keep off it
        yield
        return
    python_stderr = sys.stderr
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        ours = None
        if _is_descriptor_2(python_stderr):
            encoding, errors = getattr(python_stderr, "encoding", None), getattr(python_stderr, "errors", None)
            ours = sys.stderr = os.fdopen(os.dup(console), "w", buffering=1, encoding=encoding, errors=errors)
        try:
            yield
        finally:
            if ours is not None:
                if sys.stderr is ours:
                    sys.stderr = python_stderr
                ours.close()
            os.dup2(console, 2)
            os.close(console)
            sink.seek(0)
            lines.extend(line for line in sink.read().decode("utf-8", "replace").splitlines() if line.strip())


def _is_descriptor_2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # a test's capture buffer, a closed stream
        return False


def _flush(stream) -> None:
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass
