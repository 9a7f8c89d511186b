"""The published SqueezeNAS mac_small (trained on real Cityscapes) verified against its FP32 reference."""

from __future__ import annotations

import json

from helpers import run_cli

from deploycc.data.synth import write_split
from deploycc.models import export_onnx, resolve_arch
from deploycc.pipeline.pipeline import BuildOptions, build


def test_fp32_build_agrees_with_its_reference_on_street_scenes(tmp_path, capsys, squeezenas_weights):
    shape = (1, 3, 784, 784)  # the smallest input the LR-ASPP head takes
    reference = export_onnx(
        resolve_arch("mac_small"),
        tmp_path / "mac_small.onnx",
        input_shape=shape,
        weights=squeezenas_weights / "mac_small.pth",
    )
    artifact = build(str(reference), "cpu-ort", tmp_path / "art", BuildOptions(verify_passes=False)).out
    write_split(tmp_path / "streets", "val", 2, (392, 784), seed=9)  # resized up to 784 x 784
    code = run_cli(
        [
            "verify",
            artifact,
            "--data",
            tmp_path / "streets",
            "--reference",
            reference,
            "--max-miou-drop",
            "0.1",
            "--json",
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["gates"]
    assert report["agreement"]["pixel_agreement"] > 0.999
    assert report["accuracy"]["pixels"] > 0 and report["accuracy"]["miou"] is not None
    assert report["numerics"]["ok"]
