"""A TVM RPC device server that says what it is: ``python rpc_device_server.py --tracker H:P --key K``.

Run on the device (or inside an emulator) with nothing but the ``apache-tvm`` wheel installed: this
file imports TVM and the standard library only, so it is started by path, not as part of deploycc.

Why not ``python -m tvm.exec.rpc_server``: that one starts its listener in a fresh interpreter
(``tvm.support.popen_pool``, which executes ``sys.executable`` again). Under QEMU user mode without
a binfmt_misc registration, an aarch64 interpreter cannot execute another aarch64 program, so the
listener must run in this process (its per-session workers are forked, which QEMU handles).
The server also registers ``deploycc.device_facts``: machine, Python, TVM version and, when
``--emulated`` is given, the emulator, so that a client can label what it measured there
(latency under emulation is never a device figure). A session that ends badly (a client killed
mid-call resets the connection) is logged and the server keeps serving: TVM's own listen loop
would end there.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import sys
import time


def facts(emulated: str | None) -> dict:
    import tvm

    return {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "tvm": tvm.__version__,
        "emulated": emulated or None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracker", required=True, help="HOST:PORT of the TVM RPC tracker")
    parser.add_argument("--key", required=True, help="the device key clients request")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9300)
    parser.add_argument("--port-end", type=int, default=9399)
    parser.add_argument("--emulated", default=None, help="the emulator this server runs under (recorded)")
    args = parser.parse_args(argv)

    import tvm_ffi
    from tvm.rpc import server

    description = json.dumps(facts(args.emulated))
    tvm_ffi.register_global_func("deploycc.device_facts", lambda: description, override=True)
    host, _, port = args.tracker.rpartition(":")
    sock, bound = listen(args.host, args.port, args.port_end)
    print(
        f"deploycc device server: key {args.key} on {args.host}:{bound}, tracker {args.tracker}, {description}",
        flush=True,
    )
    server.logger.setLevel("ERROR")
    while True:
        try:
            server._listen_loop(sock, bound, args.key, (host, int(port)), None, None)
        except Exception as exc:  # one bad session; register again and go on serving
            print(f"deploycc device server: session ended with {type(exc).__name__}: {exc}", flush=True)
            time.sleep(0.5)


def listen(host: str, port: int, port_end: int) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    for candidate in range(port, port_end):
        try:
            sock.bind((host, candidate))
        except OSError:
            continue
        sock.listen(1)
        return sock, candidate
    raise SystemExit(f"deploycc device server: no free port in [{port}, {port_end}) on {host}")


if __name__ == "__main__":
    sys.exit(main())
