"""The TensorRT engine plan and trtexec commands recorded in a bundle (no TensorRT needed)."""

from __future__ import annotations

from deploycc.targets import load_target
from deploycc.targets.tensorrt.backend import _commands
from deploycc.targets.tensorrt.engine import EnginePlan, unavailable


def test_plan_round_trips_through_the_manifest():
    plan = EnginePlan(
        onnx="model.onnx", fp16=True, int8="implicit", calib_cache="calib.cache", dla_core=0, fp16_layers=("a", "b")
    )
    assert EnginePlan.from_dict(plan.__dict__ | {"fp16_layers": ["a", "b"]}) == plan


def test_dla_int8_command_for_tensorrt_85_and_10():
    plan = EnginePlan(
        onnx="model.onnx", fp16=True, int8="implicit", calib_cache="calib.cache", dla_core=0, fp16_layers=("conv7",)
    )
    cmds = _commands(plan, load_target("xavier-dla-int8"), "8.5.2")
    assert cmds["trtexec"].startswith(
        "trtexec --onnx=model.onnx --saveEngine=model.engine --timingCacheFile=timing.cache "
    )
    assert (
        "--fp16 --int8 --calib=calib.cache --useDLACore=0 --allowGPUFallback "
        "--precisionConstraints=obey --layerPrecisions=conv7:fp16"
    ) in cmds["trtexec"]
    assert "--onnx=model.qdq.onnx --stronglyTyped" in cmds["trtexec_10"]


def test_unavailable_is_one_sentence_here():
    reason = unavailable()
    assert reason is None or (reason.count(".") <= 1 and "\n" not in reason)


def test_plan_switches_to_the_qdq_model_for_tensorrt_10(monkeypatch):
    from deploycc.targets.tensorrt import engine as trt_engine

    plan = EnginePlan(onnx="model.onnx", int8="implicit", calib_cache="calib.cache")
    monkeypatch.setattr(trt_engine, "trt_version", lambda: "10.3.0")
    assert trt_engine.plan_for_installed(plan) == EnginePlan(onnx="model.qdq.onnx", int8="explicit")
    monkeypatch.setattr(trt_engine, "trt_version", lambda: "8.5.2")
    assert trt_engine.plan_for_installed(plan) == plan
