"""The build's quantize stage (INT8 targets): settings -> calibration -> sensitivity -> Q/DQ model.

Settings come from the target's ``[quantize]`` table (``method``, ``per_channel``, ``symmetric``,
``activation_type``, ``calibration_images``, ``placement``) and the build options
(``--calib-data``, ``--calib-method``, ``--calib-images``, ``--max-miou-drop``), options winning.

``placement = "cpu-fast"`` keeps the *tail* of each output in float: the data-movement ops
(Resize, Transpose, Reshape ...) between the last compute op and a graph output. Quantizing them
makes ORT quantize a full-resolution tensor only to dequantize it again for the float output
(measured on mac_small at 1024 x 2048: that Q + DQ pair of the 19 x 1024 x 2048 logits costs more
than the INT8 kernels save; see bench/bench_int8.py).

Held-out inputs for verification and sensitivity: the next images of ``--calib-data`` after the
calibration ones, or synthetic images with another seed.
"""

from __future__ import annotations

from dataclasses import replace

import onnx

from deploycc.core.errors import GateFailed, UserError
from deploycc.core.loader import graph_inputs
from deploycc.core.metadata import preprocessing_of
from deploycc.quantize.calibration import calibration_set
from deploycc.quantize.qdq import QuantConfig, QuantResult, calibrate, quantize
from deploycc.quantize.shared_scales import share_input_scales
from deploycc.targets import Target

DATA_MOVEMENT = {"Resize", "Upsample", "Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze"}
HELD_OUT = 2


def quantize_for_target(
    graph: onnx.ModelProto, original: onnx.ModelProto, target: Target, options
) -> QuantResult | None:
    """The INT8 result for ``graph`` when ``target`` is an INT8 target, else None."""
    if target.precision != "int8":
        return None
    settings = target.settings.get("quantize", {})
    config = _config(settings, options)
    if settings.get("placement") == "cpu-fast":
        config = replace(config, exclude=tuple(tail_exclusions(graph)))
    name, shape = _image_input(graph)
    count = int(options.calib_images or settings.get("calibration_images", 8))
    prep = preprocessing_of(original)
    calib = calibration_set(name, shape, prep, options.calib_data, count)
    held = calibration_set(name, shape, prep, options.calib_data, HELD_OUT, seed=options.seed + 1, offset=count)
    ranges = calibrate(graph, calib, config)
    info = {
        "placement": settings.get("placement", "all"),
        "placement_exclusions": list(config.exclude),
        "held_out": {k: v for k, v in held.describe().items() if k != "preprocessing"},
    }
    if options.max_miou_drop is not None:
        kept = _fit(graph, ranges, config, held, options, info, device_rules(target))
        config = replace(config, exclude=tuple(config.exclude) + tuple(kept))
    info.setdefault("excluded", [])
    qdq = quantize(graph, ranges, config)
    shared = shared_scale_ops(target)
    if shared:  # the device's rule, in the model the build verifies (and the TensorRT cache is made from)
        qdq, grown = share_input_scales(qdq, shared)
        info["shared_input_scales"] = {"ops": list(shared), "tensors_widened": grown}
    return QuantResult(graph, qdq, ranges, config, calib.describe(), info, held.feeds(), calib)


def quantization_error(original: onnx.ModelProto, quant: QuantResult) -> dict:
    """What INT8 costs against FP32 on the held-out inputs: per output cosine and argmax agreement,
    and the relative L2 error and agreement-mIoU drop of the first output (points)."""
    from deploycc.core.numerics import Tolerance, compare_all, run_reference
    from deploycc.quantize.sensitivity import output_drop

    names = [o.name for o in original.graph.output]
    assert quant.verify_feeds is not None, "the quantize stage keeps its held-out inputs"
    refs = [run_reference(original, f) for f in quant.verify_feeds]
    outs = [run_reference(quant.qdq, f) for f in quant.verify_feeds]
    stats = [s for r, o in zip(refs, outs) for s in compare_all(names, r, o, Tolerance(min_argmax_agreement=1e-9))]
    return {
        "reference": "original FP32 model vs the Q/DQ model, both on ONNX Runtime (optimizations off)",
        **output_drop([r[0] for r in refs], [o[0] for o in outs]),
        "cosine_min": min(s.cosine for s in stats),
        # A non-finite output has no agreement (None): min() over None and a float would raise.
        "argmax_agreement_min": min((a for s in stats if (a := s.argmax_agreement) is not None), default=None),
    }


def shared_scale_ops(target: Target) -> tuple[str, ...]:
    """The element-wise op types whose INT8 inputs share one scale on ``target`` (none unless its
    ``[legality.elementwise]`` sets ``int8_equal_input_ranges``)."""
    elementwise = target.legality.get("elementwise", {})
    return tuple(elementwise.get("ops", ())) if elementwise.get("int8_equal_input_ranges") else ()


def tail_exclusions(model: onnx.ModelProto) -> list[str]:
    """Data-movement nodes between the last compute op and each graph output."""
    producer = {o: n for n in model.graph.node for o in n.output}
    out = []
    for output in model.graph.output:
        node = producer.get(output.name)
        while node is not None and node.op_type in DATA_MOVEMENT and node.name:
            out.append(node.name)
            node = producer.get(node.input[0])
    return out


def device_rules(target: Target):
    """How ``target`` runs a Q/DQ model: its layers kept out of INT8 in FP16 on a TensorRT target
    with ``[tensorrt] fp16 = true`` (``--fp16`` and ``--layerPrecisions ...:fp16``), FP32 elsewhere;
    and its shared element-wise input scales."""
    from deploycc.quantize.sensitivity import DeviceRules

    fp16 = target.backend == "tensorrt" and bool(target.settings.get("tensorrt", {}).get("fp16"))
    return DeviceRules(fp16=fp16, shared_scale_ops=shared_scale_ops(target))


def _fit(graph, ranges, config, held, options, info: dict, device) -> list[str]:
    from deploycc.quantize.sensitivity import fit_budget, layer_precisions, layer_sensitivity, run_model

    feeds = held.feeds()
    refs = run_model(graph, feeds, options.threads)
    ranking = layer_sensitivity(graph, ranges, config, feeds, refs, options.threads, device)
    budget = float(options.max_miou_drop)
    fit = fit_budget(graph, ranges, config, feeds, refs, ranking, budget, options.threads, device)
    fp16 = device.fp16
    info.update(
        sensitivity=ranking,
        budget={k: fit[k] for k in ("budget", "met", "miou_drop", "pixel_agreement", "rel_l2", "trials")}
        | {"float_layers_in": "fp16" if fp16 else "fp32"},
        excluded=fit["kept"],
        layer_precisions=layer_precisions(fit["kept"]),
    )
    if not fit["met"]:
        raise GateFailed(
            f"--max-miou-drop {options.max_miou_drop}: even with every layer in "
            f"{'FP16 (what this target runs instead of INT8)' if fp16 else 'higher precision'} the "
            f"agreement-mIoU drop is {fit['miou_drop']:.2f} points "
            f"({'FP16 itself costs it' if fp16 else 'the un-quantizable ops cost it'})"
        )
    return fit["kept"]


def _config(settings: dict, options) -> QuantConfig:
    return QuantConfig(
        method=options.calib_method or settings.get("method", "minmax"),
        per_channel=bool(settings.get("per_channel", True)),
        symmetric=bool(settings.get("symmetric", True)),
        activation_type=str(settings.get("activation_type", "int8")),
        percentile=float(settings.get("percentile", 99.999)),
    )


def _image_input(model: onnx.ModelProto) -> tuple[str, list[int]]:
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise UserError(f"INT8 calibration needs a model with one image input; this one has {len(inputs)}")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims
