"""Interleaved repeats with a stated outlier rule: several things timed in turns, not in blocks.

Timing A's 30 runs and then B's 30 runs lets anything that happens on the machine meanwhile (a
neighbour's build, a frequency change) land on one of them only. :func:`time_interleaved` times
a list of callables in ``protocol.rounds`` rounds; in each round every callable runs
``protocol.min_repeats`` timed runs, the order rotating from round to round, after
``protocol.warmup`` untimed runs each before the first round. Disturbance is then spread over
all of them. ``max_repeats`` caps the runs per callable (rounds x runs per round) and
``max_seconds`` each callable's share of the time (at least three rounds are always run).

Outlier rule (stated, applied per callable): each round gives one value (the median, or the
minimum for ``statistic = "min"``, of its runs). A round is rejected when its value lies more
than ``protocol.reject_mad`` scaled median absolute deviations (MAD x 1.4826, the standard
deviation of a normal sample) from the median of the round values; at least half of the rounds
are always kept. The figures (``Latency``) come from the runs of the kept rounds, with the
number of rounds, the rejected count and the spread of the kept round values (max/min - 1,
in %), so the repeatability of every figure is on record. The rule is ``measure.kept_rounds``
(``measure.time_batched`` applies it to a device's rounds too).
"""

from __future__ import annotations

import time

from .measure import CLOCKS, Latency, Protocol, reduce_rounds


def time_interleaved(fns: list, protocol: Protocol, threads: int = 0) -> list[Latency]:
    """One Latency per callable in ``fns``, timed in interleaved rounds (see the module doc)."""
    if protocol.clock == "cpu" and threads != 1:
        from deploycc.core.errors import UserError

        raise UserError(
            f"the cpu clock measures latency only with exactly 1 thread (got {threads}); use the wall clock or 1 thread"
        )
    samples = interleaved_rounds(len(fns), protocol, warmed_runner(fns, protocol))
    return [reduce_rounds(rounds, protocol, threads) for rounds in samples]


def warmed_runner(fns: list, protocol: Protocol):
    """``timed_runs(i, n)``: n timed runs of ``fns[i]`` (ms, on the protocol's clock), after
    ``protocol.warmup`` untimed runs of every callable, done here."""
    clock = CLOCKS[protocol.clock]
    for fn in fns:
        for _ in range(protocol.warmup):
            fn()

    def timed_runs(i: int, count: int) -> list[float]:
        runs = []
        for _ in range(count):
            t0 = clock()
            fns[i]()
            runs.append((clock() - t0) * 1e3)
        return runs

    return timed_runs


def interleaved_rounds(
    count: int, protocol: Protocol, timed_runs, stop=None, rounds: int | None = None
) -> list[list[list[float]]]:
    """The rounds of ``count`` subjects, in rotating order: ``timed_runs(i, n)`` times n runs of
    subject i (ms). Returns subject -> round -> runs.

    By default the protocol sets the rounds (``rounds``, capped by ``max_repeats``, and
    ``max_seconds`` per subject after 3 rounds). With ``stop``, at most ``rounds`` rounds are run
    and ``stop(samples, seconds)`` is asked after each whether to end (``verify/ratio.py``)."""
    per_round = max(protocol.min_repeats, 1)
    if rounds is None:
        rounds = max(1, min(protocol.rounds, protocol.max_repeats // per_round))  # max_repeats caps the runs
    samples: list[list[list[float]]] = [[] for _ in range(count)]
    start = time.perf_counter()
    for r in range(rounds):
        if stop is None and r >= 3 and time.perf_counter() - start > protocol.max_seconds * count:
            break  # max_seconds is each subject's budget; 3 rounds at least
        for k in range(count):
            i = (k + r) % count
            samples[i].append(timed_runs(i, per_round))
        if stop is not None and stop(samples, time.perf_counter() - start):
            break
    return samples
