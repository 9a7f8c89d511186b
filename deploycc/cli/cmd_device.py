"""``deploycc device emulate-arm64``: serve an emulated arm64 device to a TVM RPC tracker.

Runs in the foreground until interrupted (Ctrl-C): an arm64 Python with TVM under QEMU user mode
(``deploycc.fleet.emulator``; set up by ``make arm64-device``), registered under ``--key``, so that
``verify``/``bench``/``lut build --remote TRACKER --key KEY`` run cross-compiled ``arm64-cpu``
artifacts on it. Its latency is labelled as emulated wherever it is reported.
"""

from __future__ import annotations

import typer

from deploycc.core.children import run_child
from deploycc.core.errors import UserError

app = typer.Typer(name="device", no_args_is_help=True, help="Devices for --remote runs: an emulated arm64 device.")


@app.command("emulate-arm64")
def emulate_arm64(
    tracker: str = typer.Option(..., "--tracker", help="TVM RPC tracker HOST:PORT to register with"),
    key: str = typer.Option("arm64-emulated", "--key", help="device key clients request"),
    port: int = typer.Option(9300, "--port", help="first port to try for the device's server"),
):
    """Serve an emulated arm64 device (QEMU user mode) to a tracker, until interrupted."""
    from deploycc.fleet.emulator import server_command
    from deploycc.fleet.tracker import parse_address

    parse_address(tracker, "--tracker")  # a malformed address is one line, exit 2
    if not key:
        raise UserError("--key: give the device key clients will request")
    argv, env = server_command(tracker, key, port=port, port_end=port + 100)
    try:  # SIGTERM or Ctrl-C stops the server's whole process group, never leaves it listening
        raise typer.Exit(run_child(argv, env))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
