"""Remote measurement on a device fleet through TVM's RPC (a tracker and an ``rpc_server`` per device).

Public API::

    Tracker("HOST:PORT")                 # every wait bounded; .require(key), .devices(key)
    lease_device(remote, key)            # a device session held by a child process (killed if stuck)
    open_remote(artifact, tracker, key)  # (manifest, RemoteSession): run/time an artifact on a device
    fan_out(tracker, key, jobs, prepare, work)   # spread jobs over every free device, retry elsewhere
    deploycc.fleet.lut.FleetTimer(FleetOptions(remote, key))   # the timer of `lut build|validate --remote`

Nothing here replaces TVM's RPC: uploads, module loading, remote tensors and ``time_evaluator``
are TVM's own. What this package adds is what a fleet needs around it: a bound on every wait, the
identity of the device each result came from, and work that moves to another device when one drops.

May import ``deploycc.lut`` (a fleet is one of the LUT workflow's timers) and everything below it;
never ci, train or cli.
"""

from .errors import RemoteError, RemoteTimeout
from .fanout import FanOutResult, fan_out
from .session import RemoteSession, lease_device, open_remote, remote_bench
from .tracker import Lease, Tracker, parse_address, remote_options

__all__ = [
    "FanOutResult",
    "Lease",
    "RemoteError",
    "RemoteSession",
    "RemoteTimeout",
    "Tracker",
    "fan_out",
    "lease_device",
    "open_remote",
    "parse_address",
    "remote_bench",
    "remote_options",
]
