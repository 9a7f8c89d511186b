"""The tracker client's bounds and bad input, the watchdog, and the batched timing protocol.

None of these needs a running fleet: an unreachable tracker is a closed port, a service that is
not a tracker is a plain socket server in a thread.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest

from deploycc.core.errors import UserError
from deploycc.fleet import RemoteError, RemoteTimeout, Tracker, parse_address
from deploycc.fleet.errors import call_with_timeout
from deploycc.verify.measure import Protocol, time_batched


@pytest.mark.parametrize("text", ["localhost", "127.0.0.1:", ":9190", "127.0.0.1:99999", "host:port"])
def test_bad_address_names_the_option(text):
    with pytest.raises(UserError, match=r"--remote .*HOST:PORT"):
        parse_address(text)


def test_parse_address():
    assert parse_address("127.0.0.1:9190") == ("127.0.0.1", 9190)


def test_unreachable_tracker_is_one_line_within_the_bound():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        start = time.monotonic()
        with pytest.raises(RemoteError, match=f"--remote 127.0.0.1:{port}: no RPC tracker answers there"):
            Tracker(f"127.0.0.1:{port}", timeout=2).require("cpu")
    assert time.monotonic() - start < 10  # our bound, not TVM's 60 s of retries


def test_a_service_that_is_not_a_tracker_is_refused():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_wrongly():
        conn, _ = server.accept()
        conn.recv(4)
        conn.sendall(b"HTTP")
        conn.close()

    threading.Thread(target=answer_wrongly, daemon=True).start()
    try:
        with pytest.raises(RemoteError, match="is not a TVM RPC tracker"):
            Tracker(f"127.0.0.1:{server.getsockname()[1]}", timeout=5).summary()
    finally:
        server.close()


def test_a_silent_service_times_out():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()  # accepts (kernel backlog) but never answers
    try:
        start = time.monotonic()
        with pytest.raises(RemoteError, match="did not complete the RPC tracker handshake"):
            Tracker(f"127.0.0.1:{server.getsockname()[1]}", timeout=1).summary()
        assert time.monotonic() - start < 5
    finally:
        server.close()


def test_call_with_timeout_bounds_a_call_that_never_returns():
    never = threading.Event()
    start = time.monotonic()
    with pytest.raises(RemoteTimeout, match=r"the stuck call did not finish within 0\.2 s"):
        call_with_timeout(never.wait, 0.2, "the stuck call")
    assert time.monotonic() - start < 2
    assert call_with_timeout(lambda: 42, 1, "quick") == 42
    with pytest.raises(ZeroDivisionError):
        call_with_timeout(lambda: 1 / 0, 1, "failing")


def test_batched_protocol_applies_the_stopping_rule_per_sample():
    """Constant runs: the running medians at 4, 5, 6 samples agree, so the protocol stops at 6,
    as a per-run measurement would; the 7th sample of the second batch is dropped."""
    calls = []

    def batch(n):
        calls.append(n)
        return [10.0] * n

    protocol = Protocol(warmup=2, min_repeats=4, max_repeats=30, rel_tol=0.01, window=3)
    lat = time_batched(batch, protocol, threads=1)
    assert calls == [2, 4, 3]  # warm-up, then min_repeats, then window-sized batches
    assert (lat.runs, lat.stable, lat.median_ms, lat.clock) == (6, True, 10.0, "device")


def test_batched_protocol_never_exceeds_max_repeats():
    values = iter([1.0, 100.0] * 50)  # the running median never settles
    lat = time_batched(
        lambda n: [next(values) for _ in range(n)],
        Protocol(warmup=0, min_repeats=3, max_repeats=10, rel_tol=0.001, window=3),
    )
    assert (lat.runs, lat.stable) == (10, False)
