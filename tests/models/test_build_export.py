"""Every zoo architecture builds, runs, and exports to a checked, faithful ONNX file."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from deploycc.core.errors import UserError
from deploycc.models import export_onnx, resolve_arch, zoo_names
from deploycc.models.export import build_for_export

# small but legal shapes per arch (LR-ASPP needs H, W >= 784)
SMALL = {
    "mac_small": [1, 3, 784, 784],
    "lat_small": [1, 3, 784, 784],
    "mac_large": [1, 3, 784, 784],
    "lat_large": [1, 3, 784, 784],
    "mac_xlarge": [1, 3, 128, 256],
    "lat_xlarge": [1, 3, 128, 256],
    "fbnet_a": [1, 3, 224, 224],
    "squeezenet1_1": [1, 3, 224, 224],
}


def test_every_zoo_arch_has_a_small_shape():
    assert sorted(SMALL) == zoo_names()


def _ort(path):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_export_matches_torch(name, tmp_path):
    arch = resolve_arch(name).with_input_shape(SMALL[name])
    out = export_onnx(arch, tmp_path / "m.onnx")
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    if arch.space != "squeezenet":  # SqueezeNet 1.1 has no BatchNorm
        assert "BatchNormalization" in ops
        for n in model.graph.node:
            if n.op_type == "BatchNormalization":
                assert len(n.output) == 1
                assert {a.name: a.i for a in n.attribute}.get("training_mode", 0) == 0
    assert "Identity" not in ops and "Shape" not in ops
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == SMALL[name]
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["deploycc.arch"]) == arch.to_dict()
    assert json.loads(meta["deploycc.preprocessing"])["std"] == [0.229, 0.224, 0.225]

    x = np.random.default_rng(0).standard_normal(SMALL[name]).astype(np.float32)
    got = _ort(out).run(["logits"], {"image": x})[0]
    with torch.no_grad():
        want = build_for_export(arch)(torch.from_numpy(x)).numpy()
    if arch.space == "squeezenas":
        assert want.shape == (1, arch.num_classes, *SMALL[name][2:])
    else:
        assert want.shape == (1, arch.num_classes)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1, np.abs(want).max()))


def test_export_is_reproducible(tmp_path):
    arch = resolve_arch("mac_xlarge")
    a = export_onnx(arch, tmp_path / "a.onnx", input_shape=[1, 3, 64, 64])
    b = export_onnx(arch, tmp_path / "b.onnx", input_shape=(1, 3, 64, 64))
    assert a.read_bytes() == b.read_bytes()


def test_export_bad_input_shape_is_user_error(tmp_path):
    arch = resolve_arch("mac_small")
    for shape in ([1, 3, 512, 1024], [1, 3, 1024], [1, 3, 1000, 2000], ["a", 3, 1, 1]):
        with pytest.raises(UserError):
            export_onnx(arch, tmp_path / "x.onnx", input_shape=shape)
    assert not list(tmp_path.iterdir())


def test_export_bad_weights_leaves_nothing(tmp_path):
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"garbage")
    out = tmp_path / "x.onnx"
    with pytest.raises(UserError, match=r"w\.pth"):
        export_onnx(resolve_arch("squeezenet1_1"), out, weights=bad)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["w.pth"]


def test_export_bad_opset_and_folder(tmp_path):
    with pytest.raises(UserError, match="opset"):
        export_onnx(resolve_arch("squeezenet1_1"), tmp_path / "x.onnx", opset=11)
    with pytest.raises(UserError, match="does not exist"):
        export_onnx(resolve_arch("squeezenet1_1"), tmp_path / "no" / "x.onnx")
