"""The ONNX-graph MAC counter agrees with the independent PyTorch-hook counter and the papers."""

from __future__ import annotations

import json

import onnx
import pytest
from helpers import run_cli

from deploycc.core.loader import load_model
from deploycc.core.macs import conv_macs, layer_costs, total_params
from deploycc.models import build_module, count_macs, export_onnx, resolve_arch

PUBLISHED_GMACS = {
    "mac_small": 3.01,
    "lat_small": 4.47,
    "mac_large": 9.39,
    "lat_large": 19.57,
    "mac_xlarge": 21.84,
    "lat_xlarge": 32.73,
}


@pytest.mark.parametrize(
    "name, shape",
    [
        ("mac_small", (1, 3, 784, 784)),
        ("lat_xlarge", (1, 3, 256, 512)),
        ("fbnet_a", (1, 3, 224, 224)),
        ("squeezenet1_1", (1, 3, 224, 224)),
    ],
)
def test_onnx_count_matches_torch_count(tmp_path, name, shape):
    arch = resolve_arch(name)
    model = load_model(export_onnx(arch, tmp_path / f"{name}.onnx", input_shape=shape))
    torch_report = count_macs(build_module(arch), shape)
    assert conv_macs(model) == torch_report.conv
    linear = sum(c.macs for c in layer_costs(model) if c.op in ("Gemm", "MatMul"))
    assert linear == torch_report.linear


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_published_gmacs_from_the_graph(tmp_path, name):
    model = load_model(export_onnx(resolve_arch(name), tmp_path / f"{name}.onnx"))
    assert round(conv_macs(model) / 1e9, 2) == PUBLISHED_GMACS[name]


def test_params_count_initializers(tmp_path):
    model = onnx.load(export_onnx(resolve_arch("squeezenet1_1"), tmp_path / "s.onnx"))
    assert total_params(model) == 1_235_496


def test_inspect_cli_json(tmp_path, capsys):
    assert run_cli(["inspect", "fbnet_a", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["inputs"] == {"image": [1, 3, 224, 224]}
    assert data["ops"]["BatchNormalization"] > 0 and data["ops"]["Conv"] > 0
    assert data["conv_macs"] == sum(layer["macs"] for layer in data["layers"] if layer["op"] == "Conv")
    assert all({"name", "op", "shape", "macs", "params"} <= set(layer) for layer in data["layers"])
