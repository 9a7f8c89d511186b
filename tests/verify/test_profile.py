"""Per-layer profiles: ORT's profiler and TVM's VM instrument, mapped to layers and units.

A real FBNet architecture (reduced size) is built on cpu-ort (and on cpu for the slow TVM test)
and profiled; the per-node rows must have the contract shape issue 13's report reads, every
searchable layer must be placed with the unit the architecture chose, and the node times must
add up to no more than the end-to-end time of a run.
"""

from __future__ import annotations

import json
import random

import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.verify.profile import by_layer, profile_artifact
from deploycc.verify.profile_names import place_of
from deploycc.verify.profile_tvm import _exported, _origins

SHAPE = [1, 3, 32, 32]


def _arch(tmp_path):
    from deploycc.models import parse_arch, sample_genotype, save_arch

    geno = sample_genotype("fbnet", random.Random(3))
    arch = parse_arch(
        {
            "format": "deploycc-arch",
            "version": 1,
            "name": "p",
            "space": "fbnet",
            "genotype": geno,
            "input_shape": SHAPE,
            "num_classes": 10,
        }
    )
    return save_arch(arch, tmp_path / "arch.json"), arch


@pytest.fixture(scope="module")
def ort_artifact(tmp_path_factory):
    from deploycc.pipeline.pipeline import BuildOptions, build

    tmp = tmp_path_factory.mktemp("profile")
    path, arch = _arch(tmp)
    build(str(path), "cpu-ort", tmp / "art", BuildOptions(verify_passes=False, threads=1))
    return tmp / "art", arch


def _check_contract(profile: dict, backend: str) -> None:
    assert set(profile) == {"backend", "layers"} and profile["backend"] == backend
    for row in profile["layers"]:
        assert set(row) == {"name", "op_type", "layer", "unit", "ms"}
        assert isinstance(row["name"], str) and isinstance(row["op_type"], str) and row["ms"] >= 0


def _check_placed(profile: dict, arch) -> None:
    units = {r["layer"]: r["unit"] for r in by_layer(profile)}
    assert units["stem"] == "stem" and units["head"] == "head"
    for i, code in enumerate(arch.genotype):
        if code != "skip":  # an identity skip compiles to nothing
            assert units[f"layer {i}"] == code


def test_ort_profile_maps_every_node_to_its_layer_and_unit(ort_artifact):
    art, arch = ort_artifact
    profile = profile_artifact(art, threads=1, runs=3)
    _check_contract(profile, "ort")
    _check_placed(profile, arch)
    assert all(r["layer"] is not None for r in profile["layers"])  # reorders go to their neighbours
    assert json.loads(json.dumps(profile)) == profile


def test_bench_profile_json_and_refusals(ort_artifact, capsys):
    art, _ = ort_artifact
    assert (
        run_cli(["bench", art, "--threads", "1", "--max-repeats", "5", "--profile", "--profile-runs", "2", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    _check_contract(data["profile"], "ort")
    assert run_cli(["bench", art, "--profile", "--remote", "127.0.0.1:9190", "--key", "x"]) == 2
    assert "--remote" in capsys.readouterr().err
    with pytest.raises(UserError, match="at least 1 run"):
        profile_artifact(art, runs=0)


def test_names_place_nodes_and_modules():
    fb = {"space": "fbnet", "genotype": ["k3_e1", "skip"]}
    sq = {"space": "squeezenas", "genotype": ["k5_e6"]}
    assert place_of("/units.1/op/op.2/Relu_output_0_nchwc", fb) == ("layer 1", "skip")
    assert place_of("/stem/stem.0/Conv", fb) == ("stem", "stem")
    assert place_of(_exported("stem.0"), fb) == ("stem", "stem")
    assert place_of("/head/fc/Gemm", fb) == ("head", "head")
    assert place_of("/encoder/residuals.0/conv/Conv", sq) == ("layer 0", "k5_e6")
    assert place_of(_exported("encoder.last_conv.0"), sq) == ("head", "head")
    assert place_of("/decoder/aspp/Conv", sq) == ("head", "head")
    assert place_of("ReorderOutput_token_3", fb) == (None, None)
    assert place_of("/units.1/Conv", None) == (None, None)
    assert _exported("encoder.residuals.12.conv1") == "/encoder/residuals.12/conv1"


def test_tvm_calls_are_placed_only_when_every_conv_matches(tmp_path):
    _, arch = _arch(tmp_path)
    from deploycc.verify.profile_tvm import _conv_modules

    convs = _conv_modules(arch.to_dict())
    calls = [("vm.builtin.alloc_tensor", 0.1, None)]
    for i, (_, shape, _groups) in enumerate(convs):
        calls += [(f"conv2d{i}", 1.0, shape), (f"add{i}", 0.1, (1,)), ("relu", 0.1, None)]
    origins = _origins(calls, arch.to_dict())
    assert origins[0] is None and origins[1] == convs[0][0] and origins[3] == convs[0][0]
    assert place_of(origins[-1], arch.to_dict()) == ("head", "head")
    wrong = list(calls)
    wrong[1] = ("conv2d0", 1.0, (1, 1, 1, 1))
    assert _origins(wrong, arch.to_dict()) == [None] * len(calls)
    assert _origins(calls[:-3], arch.to_dict()) == [None] * (len(calls) - 3)
    # independent branches in another order than forward() (mac_small's two 1x1 head convs):
    # matched by weight shape among the next few, each to its own module
    distinct = next(i for i in range(len(convs) - 1) if convs[i][1] != convs[i + 1][1])
    swapped = list(calls)
    a, b = 1 + 3 * distinct, 1 + 3 * (distinct + 1)
    swapped[a], swapped[b] = calls[b], calls[a]
    moved = _origins(swapped, arch.to_dict())
    assert moved[a] == convs[distinct + 1][0] and moved[b] == convs[distinct][0]


def test_tvm_calls_of_the_blocked_layout_are_placed_by_their_packed_weights(tmp_path):
    """``[tvm] layout = "NCHWc"`` calls carry packed weights (stem, dense, grouped, depthwise)."""
    import numpy as np

    from deploycc.targets.tvm import blocked_compute as bc
    from deploycc.verify.profile_tvm import _conv_modules

    _, arch = _arch(tmp_path)
    convs = _conv_modules(arch.to_dict())
    calls = []
    for i, (_, shape, groups) in enumerate(convs):
        w = np.zeros(shape, np.float32)
        if groups == shape[0] and shape[1] == 1 and groups > 1:
            packed = bc.pack_depthwise_weight(w, 8)
        elif i == 0:
            packed = bc.pack_stem_weight(w, 8)
        elif groups > 1 and shape[1] % 8 == 0 and (shape[0] // groups) % 8 == 0:
            packed = bc.pack_dense_weight(w, 8)  # groups of whole blocks
        else:
            packed = bc.pack_dense_weight(bc.block_diagonal(w, groups), 8)
        calls += [(f"fused_conv2d_nchwc{i}", 1.0, packed.shape), ("relu", 0.1, None)]
    origins = _origins(calls, arch.to_dict())
    assert origins[::2] == [name for name, _, _ in convs]


@pytest.mark.slow
def test_tvm_profile_places_every_layer(tmp_path):
    from deploycc.pipeline.pipeline import BuildOptions, build

    path, arch = _arch(tmp_path)
    build(str(path), "cpu", tmp_path / "art", BuildOptions(verify_passes=False, threads=1))
    profile = profile_artifact(tmp_path / "art", threads=1, runs=2)
    _check_contract(profile, "tvm")
    _check_placed(profile, arch)


def test_per_run_median_is_not_moved_by_one_disturbed_run():
    from deploycc.verify.profile import _ort_node_times

    # a trace of one warm-up and three timed runs; the conv took 9 ms in the second timed run only
    events = [{"cat": "Session", "name": "model_run", "ts": t} for t in (0, 100, 200, 300)]
    for start, conv_us in ((0, 5000), (100, 1000), (200, 9000), (300, 1200)):
        events.append(
            {
                "cat": "Node",
                "name": "/units.0/Conv_kernel_time",
                "ts": start + 1,
                "dur": conv_us,
                "args": {"op_name": "Conv"},
            }
        )
        events.append(
            {
                "cat": "Node",
                "name": "/units.0/Relu_kernel_time",
                "ts": start + 50,
                "dur": 100,
                "args": {"op_name": "Relu"},
            }
        )
    (conv, relu) = _ort_node_times(events, 3, "mean")
    assert conv == ("/units.0/Conv", "Conv", pytest.approx((1.0 + 9.0 + 1.2) / 3)) and relu[2] == pytest.approx(0.1)
    (conv, _) = _ort_node_times(events, 3, "median")
    assert conv[2] == pytest.approx(1.2)  # the warm-up run is left out, the disturbed run does not count
