"""The six published SqueezeNAS nets: trained weights load strictly, GMACs match the paper."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from deploycc.models import build_module, export_onnx, load_weights, resolve_arch
from deploycc.models.macs_torch import count_macs

PUBLISHED_GMACS = {
    "mac_small": 3.01,
    "lat_small": 4.47,
    "mac_large": 9.39,
    "lat_large": 19.57,
    "mac_xlarge": 21.84,
    "lat_xlarge": 32.73,
}
PARAMS = {"mac_small": (366, 287_018), "lat_small": (294, 479_166)}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_published_gmacs(name):
    arch = resolve_arch(name)
    assert arch.input_shape == (1, 3, 1024, 2048)
    report = count_macs(build_module(arch), arch.input_shape)
    assert report.linear == 0
    assert round(report.conv / 1e9, 2) == PUBLISHED_GMACS[name]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_published_weights_load_strictly(name, published):
    module = build_module(resolve_arch(name))
    sd = module.state_dict()
    assert (len(sd), sum(t.numel() for t in sd.values())) == PARAMS[name]
    load_weights(module, published(name))
    ref = torch.load(published(name), map_location="cpu", weights_only=True)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in ref.items())


def test_published_weights_predict_something(published):
    """Trained BN statistics should keep activations sane on a normalized image."""
    module = load_weights(build_module(resolve_arch("mac_small")), published("mac_small"))
    x = torch.rand(1, 3, 784, 784)
    x = (x - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    with torch.no_grad():
        y = module(x)
    assert y.shape == (1, 19, 784, 784) and torch.isfinite(y).all()


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_export_with_published_weights_matches_torch(name, published, tmp_path):
    arch = resolve_arch(name).with_input_shape([1, 3, 784, 800])
    out = export_onnx(arch, tmp_path / f"{name}.onnx", weights=published(name))
    model = onnx.load(out)
    module = load_weights(build_module(arch), published(name))
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == n_bn
    x = np.random.default_rng(1).standard_normal(arch.input_shape).astype(np.float32)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(out), so, providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"image": x})[0]
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
