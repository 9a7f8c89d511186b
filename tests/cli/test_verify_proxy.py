"""`deploycc verify --proxy`: a device-only bundle verified through the stand-in its build checked."""

from __future__ import annotations

import json

import onnx
import pytest
from helpers import run_cli
from seg_golden import seg_model, write_folder

from deploycc.pipeline.pipeline import build


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxy")
    onnx.save(seg_model(), root / "golden.onnx")
    data = root / "data"
    write_folder(data, n=3)
    return {
        "data": data,
        "xavier-int8": build(str(root / "golden.onnx"), "xavier-int8", root / "golden.xavier").out,
        "kirin970-npu": build(str(root / "golden.onnx"), "kirin970-npu", root / "golden.kirin").out,
        "cpu-ort": build(str(root / "golden.onnx"), "cpu-ort", root / "golden.cpu-ort").out,
    }


def verify(capsys, *args) -> tuple[int, str, str]:
    code = run_cli(["verify", *[str(a) for a in args]])
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_a_bundle_without_proxy_names_the_option(capsys, bundles):
    code, _, err = verify(capsys, bundles["xavier-int8"], "--data", bundles["data"])
    assert code == 3 and "--proxy" in err


# The golden model's classes are 0.024 apart in logit per unit of k, far below one INT8 step of
# its logits (about 18 / 127): its INT8 stand-in scores about 22 % mIoU, its FP16 one 100 %.
@pytest.mark.parametrize(("target", "min_miou"), [("xavier-int8", "10"), ("kirin970-npu", "99")])
def test_passing_gates_through_the_stand_in_still_exit_3(capsys, bundles, target, min_miou):
    code, out, err = verify(
        capsys, bundles[target], "--data", bundles["data"], "--min-miou", min_miou, "--proxy", "--json"
    )
    assert code == 3, err
    report = json.loads(out)
    assert report["proxy"] and report["gates"][0]["status"] == "passed"
    assert "gates passed through the stand-in" in err and "unchecked" in err


def test_a_failing_gate_through_the_stand_in_exits_1(capsys, bundles):
    code, _, err = verify(capsys, bundles["xavier-int8"], "--data", bundles["data"], "--min-miou", "99", "--proxy")
    assert code == 1 and "gate min-miou failed" in err


def test_proxy_on_a_host_artifact_is_refused(capsys, bundles):
    code, _, err = verify(capsys, bundles["cpu-ort"], "--data", bundles["data"], "--proxy")
    assert code == 2 and "without --proxy" in err


def test_proxy_with_remote_is_refused(capsys, bundles):
    code, _, err = verify(capsys, bundles["xavier-int8"], "--data", bundles["data"], "--proxy", "--remote", "h:1")
    assert code == 2 and "--remote" in err
