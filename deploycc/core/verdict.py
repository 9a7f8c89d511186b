"""The three verdicts of a check, and the exit code a set of them earns.

Every check deploycc reports (numerics, mIoU, mIoU drop, latency, LUT error) ends as one of:

* ``passed``: it ran and held;
* ``failed``: it ran and did not hold (or could not be computed: the pair's build broke);
* ``not_run``: it did not run here, with ``reason`` (why) and ``needs`` (what would run it).

A ``not_run`` or ``failed`` check may be *waived* by the project file (``[[waivers]]`` naming the
pair and the gate, with a reason): the verdict stays what it was, the waiver is recorded beside it,
and it no longer blocks exit 0. A set of verdicts earns exit 0 when every one passed or is waived,
1 when one failed, 3 when none failed but one did not run ("unverified").
"""

from __future__ import annotations

PASSED, FAILED, NOT_RUN = "passed", "failed", "not_run"
STATUSES = (PASSED, FAILED, NOT_RUN)
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_UNVERIFIED, EXIT_INTERNAL = 0, 1, 2, 3, 4


def not_run(reason: str, needs: str) -> dict:
    """The fields of a check that did not run: why, and what would run it."""
    return {"status": NOT_RUN, "reason": reason, "needs": needs}


def label(status: str) -> str:
    """How a person reads a status: ``not run`` rather than ``not_run``."""
    return status.replace("_", " ")


def holds(check: dict) -> bool:
    """Passed, or waived by the project file."""
    return check.get("status") == PASSED or bool(check.get("waived"))


def outcome(checks: list[dict]) -> str:
    """passed | failed | unverified for a set of checks (waived ones count as holding)."""
    open_checks = [c for c in checks if not holds(c)]
    if any(c.get("status") == FAILED for c in open_checks):
        return "failed"
    if open_checks:
        return "unverified"
    return "passed"


def exit_code(result: str) -> int:
    return {"passed": EXIT_OK, "failed": EXIT_FAILED, "unverified": EXIT_UNVERIFIED}[result]
