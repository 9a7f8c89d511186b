"""A small subset of the matrix (bench/bench_matrix.py) in the default suite: one zoo net per head
type for each device target, at a reduced size, built in-process. Every cell
must end as a user's ``deploycc build`` would exit 0 (verified here) or 3 (built; the named step
runs on the device), never 1 (a check failed), 2 (refused) or 4 (crashed).

The LR-ASPP head is left out here: its 49x49 pool needs H, W >= 784, tens of seconds per cell on
two cores; the matrix bench builds it (``make matrix``).
"""

from __future__ import annotations

import pytest

from deploycc.core.errors import DeployccError, Unavailable
from deploycc.core.verdict import NOT_RUN
from deploycc.pipeline.pipeline import BuildOptions, build

DEVICE_TARGETS = [
    "arm64-cpu",
    "xavier-int8",
    "xavier-dla-int8",
    "xavier-fp16",
    "kirin970-npu",
    "h100",
    "v100",
    "k20",
    "mali-t628",
]
# Reduced sizes with a 2x2 last feature map. At the smallest accepted sizes (16x16, 32x32) the map is
# 1x1, where TVM's own dlight GPU rules crashed; tests/targets/tvm/test_gpu_schedules.py builds that
# case for every GPU target, and the matrix bench builds the nets there.
HEADS = {"aspp": ("mac_xlarge", (1, 3, 32, 32)), "classify": ("fbnet_a", (1, 3, 64, 64))}


def exit_code_of_build(net: str, target: str, shape, out) -> tuple[int, str]:
    """The exit code ``deploycc build`` would give, and its line."""
    try:
        result = build(net, target, out, BuildOptions(input_shape=shape))
    except Unavailable as exc:  # a tool this machine lacks (make cross-tools installs the cross compilers)
        pytest.skip(f"{target}: {exc}")
    except DeployccError as exc:
        return exc.exit_code, str(exc)
    except Exception as exc:  # an internal error: the command line would exit 4
        return 4, f"{type(exc).__name__}: {exc}"
    v = result.manifest["verification"]
    return (3, v["reason"]) if v["status"] == NOT_RUN else (0, "verified")


@pytest.mark.parametrize("target", DEVICE_TARGETS)
@pytest.mark.parametrize("head", sorted(HEADS))
def test_matrix_cell_builds_or_names_its_device_step(tmp_path, head, target):
    net, shape = HEADS[head]
    code, line = exit_code_of_build(net, target, shape, tmp_path / "art")
    assert code in (0, 3), f"{net}@{target} {'x'.join(map(str, shape[2:]))}: exit {code}: {line}"
