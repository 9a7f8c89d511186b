"""The emulated arm64 device: a TVM RPC server in a real arm64 Python under QEMU user mode.

``make arm64-device`` (``tools/arm64-device.sh``) puts a Debian arm64 root file system with
Python 3.11 and the pinned aarch64 ``apache-tvm`` wheels into :func:`device_root`. This module
starts ``rpc_device_server.py`` there under ``qemu-aarch64-static``, registered with a tracker
like any device, and reporting ``emulated`` in its device facts, so that what it measures is
labelled as emulation everywhere (``bench --remote``, ``verify --remote``, ``lut build
--remote``) and never taken for the device's latency. What it is for: running a cross-compiled
``arm64-cpu`` artifact for real (numerics, mIoU) on a machine without an arm64 board.

The interpreter is started explicitly by QEMU (``-L`` points it at the root file system), so no
binfmt_misc registration, chroot or privilege is needed to run it; TVM is loaded as its runtime
only (``TVM_USE_RUNTIME_LIB=1``), which is all a device needs and much faster to start under
emulation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

QEMU = "qemu-aarch64-static"
SERVER = Path(__file__).with_name("rpc_device_server.py")


def device_root() -> Path:
    """Where ``make arm64-device`` put the device (``$DEPLOYCC_ARM64_DEVICE`` overrides)."""
    default = Path.home() / ".cache" / "deploycc" / "arm64-device"
    return Path(os.environ.get("DEPLOYCC_ARM64_DEVICE", default))


def unavailable() -> str | None:
    """None when the emulated device can start here, else one sentence saying why not."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (Debian qemu-user-static; `make arm64-device` installs it as root)"
    root = device_root()
    if not (root / "ready").is_file():
        return f"no emulated arm64 device in {root} (run `make arm64-device`)"
    return None


def emulator_version() -> str:
    out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=30).stdout
    return (out.splitlines() or [QEMU])[0].strip()


def server_command(
    tracker: str, key: str, host: str = "127.0.0.1", port: int = 9300, port_end: int = 9399
) -> tuple[list[str], dict]:
    """(argv, environment) that start one emulated device registered at ``tracker`` under ``key``."""
    reason = unavailable()
    if reason:
        from deploycc.core.errors import Unavailable

        raise Unavailable(f"emulated arm64 device: {reason}")
    root = device_root()
    argv = [
        QEMU,
        "-L",
        str(root / "root"),
        str(root / "root" / "usr" / "bin" / "python3.11"),
        str(SERVER),
        "--tracker",
        tracker,
        "--key",
        key,
        "--host",
        host,
        "--port",
        str(port),
        "--port-end",
        str(port_end),
        "--emulated",
        f"{emulator_version()} (QEMU user mode on {os.uname().machine})",
    ]
    env = {**os.environ, "PYTHONPATH": str(root / "site"), "TVM_USE_RUNTIME_LIB": "1"}
    return argv, env
