"""Stage timing and progress reporting, shared by every long-running command.

Engine code says ``with stages.step("compile"):``; the CLI passes a reporter that draws rich
progress, tests pass none. The timings end up in the command's report.
"""

from __future__ import annotations

import time
from contextlib import contextmanager


class Stages:
    def __init__(self, reporter=None):
        self.times: dict[str, float] = {}
        self._reporter = reporter

    @contextmanager
    def step(self, name: str):
        start = time.perf_counter()
        if self._reporter:
            self._reporter.start(name)
        ok = False
        try:
            yield
            ok = True
        finally:
            self.times[name] = round(time.perf_counter() - start, 4)
            if self._reporter:
                self._reporter.stop(name, self.times[name], ok)
