"""TVM's CPU thread pool sized like ONNX Runtime's: one thread per physical core.

Without ``TVM_NUM_THREADS`` (or ``OMP_NUM_THREADS``), TVM's runtime takes half of
``std::thread::hardware_concurrency()`` on x86, assuming two hardware threads per core. This VM
has 2 vCPUs and one thread per core, so every TVM artifact here ran on 1 thread while ONNX
Runtime (which counts physical cores) ran on 2. Measured on mac_small at 1x3x1024x2048: 190-250
ms on TVM's 1 thread against 101-122 ms on 2, and ``runtime.config_threadpool`` cannot raise the
count above that maximum. The maximum is read when a thread's pool is first made, so
:func:`size_thread_pool` sets the variable before deploycc builds or loads TVM code; a value the
user set wins. Hand-written because TVM offers no call that raises the maximum later.
"""

from __future__ import annotations

import os
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (its affinity), from the kernel's
    topology files; the CPU count where those are missing."""
    cpus = sorted(os.sched_getaffinity(0))
    cores = set()
    for cpu in cpus:
        topo = SYS_CPU / f"cpu{cpu}" / "topology"
        try:
            cores.add(
                (topo.joinpath("physical_package_id").read_text().strip(), topo.joinpath("core_id").read_text().strip())
            )
        except OSError:
            return len(cpus)
    return max(1, len(cores))


def size_thread_pool() -> str:
    """Set ``TVM_NUM_THREADS`` to the physical cores unless the user sized the pool; returns the
    value in force (effective for thread pools TVM has not made yet)."""
    for name in ("TVM_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name):
            return os.environ[name]
    os.environ["TVM_NUM_THREADS"] = str(physical_cores())
    return os.environ["TVM_NUM_THREADS"]
