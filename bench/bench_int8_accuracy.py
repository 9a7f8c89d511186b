"""What INT8 costs the published SqueezeNAS nets, per INT8 target, and what mixed precision buys back.

    nice -n 10 .venv/bin/python bench/bench_int8_accuracy.py [--nets mac_small,lat_small]
                 [--size 784x1568] [--keep 0,3,10,20,40,60] [--held 4] [--sens-images 1] [--json out.json]
                 [--images DIR] [--calib-images DIR]

For each net with published weights (``../shared/data/squeezenas/<net>.pth``; a net without them
is skipped with the reason) and each INT8 target (cpu-int8, xavier-int8, xavier-dla-int8), the
Q/DQ model the build makes (the target's ``[quantize]`` settings and passes, 8 synthetic
calibration scenes of seed 0, the DLA's shared element-wise scales) is scored against the FP32
model on **held-out** synthetic street scenes (seed 3: neither the calibration nor the build's
held-out seed 1, nor the sensitivity set, seed 2):

* ``agree``: pixel agreement of the argmax with the FP32 argmax (%);
* ``agree_miou_drop``: 100 - mIoU of the INT8 argmax taking the FP32 argmax as ground truth
  (the quantity ``--max-miou-drop`` budgets);
* ``label_miou_loss``: FP32 mIoU minus INT8 mIoU, both against the scenes' labels (points).

Each target's model is run as the device runs it (``deploycc.quantize.stage.device_rules``): on the
Xavier targets every op outside INT8 in FP16. Rows: ``keep=k`` keeps the k layers that
``deploycc.quantize.sensitivity.layer_sensitivity`` ranks most sensitive (on the sensitivity set,
xavier-int8's settings and rules) out of INT8; ``fp16`` is the whole net in FP16 (the precision
the kept layers run in on the Xavier), the floor no INT8 mix on the Xavier can beat.
The FP32 model's top-2 logit margins say how many pixels sit near a tie.

``--images DIR`` scores on the street photographs of a folder instead of synthetic scenes (every
PNG/JPEG, or a Cityscapes / images+labels layout; all of them, resized to ``--size``). Photographs
without labels give the agreement figures only; the label columns then say "not run: no labels".
``--calib-images DIR`` calibrates on a folder's first 8 images (the target's ``calibration_images``)
instead of the synthetic scenes, as ``deploycc build --calib-data DIR`` does; it must not share an
image with ``--images`` (refused). With no keep > 0 the sensitivity ranking is not computed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO.parent / "shared" / "data" / "squeezenas"
TARGETS = ("cpu-int8", "xavier-int8", "xavier-dla-int8")
SEEDS = {"calibration": 0, "sensitivity": 2, "evaluation": 3}
NO_LABELS = "not run: no labels"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="mac_small,lat_small")
    ap.add_argument("--size", default="784x1568")
    ap.add_argument("--keep", default="0,3,10,20,40,60")
    ap.add_argument("--held", type=int, default=4)
    ap.add_argument("--sens-images", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--images", default=None, help="score on the photographs of this folder")
    ap.add_argument("--calib-images", default=None, help="calibrate on this folder's images")
    args = ap.parse_args(argv)
    _check_folders(ap, args)
    hw = tuple(int(v) for v in args.size.split("x"))
    results = {}
    for net in args.nets.split(","):
        if not (WEIGHTS / f"{net}.pth").is_file():
            print(f"{net}: skipped, no published weights at {WEIGHTS / f'{net}.pth'}")
            continue
        results[net] = bench_net(net, hw, [int(k) for k in args.keep.split(",")], args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _check_folders(ap, args) -> None:
    from deploycc.core.errors import UserError
    from deploycc.quantize.calibration import image_files

    try:
        held = {p.resolve() for p in image_files(Path(args.images))} if args.images else set()
        calib = {p.resolve() for p in image_files(Path(args.calib_images))} if args.calib_images else set()
    except UserError as exc:
        ap.error(str(exc).replace("--calib-data", "--images / --calib-images"))
    shared = sorted(str(p) for p in held & calib)
    if shared:
        ap.error(f"--calib-images and --images share {len(shared)} image(s), e.g. {shared[0]}: no longer held out")


def bench_net(net: str, hw: tuple[int, int], keeps: list[int], args) -> dict:
    from deploycc.targets import load_target
    from deploycc.targets.fp16_sim import fp16_model

    out: dict = {"size": list(hw), "seeds": SEEDS, "images": args.images, "calib_images": args.calib_images}
    graphs = {t: _fp32_graph(net, hw, load_target(t).passes) for t in TARGETS}
    prep = graphs["xavier-int8"][1]
    xs, labels = _photos(args.images, hw, prep) if args.images else _scenes(SEEDS["evaluation"], args.held, hw, prep)
    fp32 = {t: [_run(g, x) for x in xs] for t, (g, _) in graphs.items()}
    ref = fp32["xavier-int8"]
    out["margins"] = _margins(ref)
    print(f"{net}: FP32 top-2 logit margin {out['margins']}", flush=True)
    half = [_run(fp16_model(graphs["xavier-int8"][0]), x, optimize=False) for x in xs]
    out["fp16"] = _scores(ref, half, labels)
    _print(net, "xavier-fp16", "fp16", out["fp16"])
    out["targets"] = {}
    ranking = _ranking(graphs["xavier-int8"], hw, args) if any(k > 0 for k in keeps) else []
    out["ranking"] = ranking
    for target in TARGETS:
        rows = out["targets"][target] = {}
        for keep in keeps:
            outs = _int8_outputs(graphs[target], load_target(target), hw, ranking[:keep], xs, args.calib_images)
            rows[f"keep={keep}"] = _scores(fp32[target], outs, labels)
            _print(net, target, f"keep={keep}", rows[f"keep={keep}"])
    return out


def _ranking(graph_prep, hw, args) -> list[str]:
    """Layers by sensitivity (quantized alone, xavier-int8's settings and rules, on the sensitivity scenes)."""
    from deploycc.quantize.sensitivity import layer_sensitivity
    from deploycc.quantize.stage import device_rules
    from deploycc.targets import load_target

    graph, prep = graph_prep
    ranges, config, calib = _calibrated(graph, prep, load_target("xavier-int8"), hw, args.calib_images)
    sens_xs = _scenes(SEEDS["sensitivity"], args.sens_images, hw, prep)[0]
    sens_feeds = [{calib.input_name: x} for x in sens_xs]
    sens_refs = [_run(graph, x) for x in sens_xs]
    rules = device_rules(load_target("xavier-int8"))
    return [r["node"] for r in layer_sensitivity(graph, ranges, config, sens_feeds, sens_refs, 0, rules)]


def _int8_outputs(graph_prep, target, hw, keep: list[str], xs, calib_images=None) -> list[np.ndarray]:
    """What ``target`` computes with ``keep`` out of INT8: its Q/DQ model (DLA: shared element-wise
    scales), the float ops in FP16 on a TensorRT FP16 target (``deploycc.quantize.stage.device_rules``)."""
    from deploycc.quantize.sensitivity import run_model
    from deploycc.quantize.stage import device_rules

    graph, prep = graph_prep
    ranges, config, calib = _calibrated(graph, prep, target, hw, calib_images)
    names = {n.name for n in graph.graph.node}
    config = replace(config, exclude=tuple(config.exclude) + tuple(k for k in keep if k in names))
    device = device_rules(target)
    return run_model(device.qdq(graph, ranges, config), [{calib.input_name: x} for x in xs], 0, device.fp16)


def _calibrated(graph, prep, target, hw, folder=None):
    from deploycc.quantize.calibration import calibration_set
    from deploycc.quantize.qdq import calibrate
    from deploycc.quantize.stage import _config, tail_exclusions

    settings = target.settings.get("quantize", {})
    config = _config(settings, argparse.Namespace(calib_method=None))
    if settings.get("placement") == "cpu-fast":
        config = replace(config, exclude=tuple(tail_exclusions(graph)))
    name = graph.graph.input[0].name
    calib = calibration_set(name, [1, 3, *hw], prep, folder, int(settings.get("calibration_images", 8)))
    return calibrate(graph, calib, config), config, calib


def _fp32_graph(net: str, hw, passes):
    """The zoo net as the build sees it before quantizing: exported at ``hw``, simplified, the target's passes."""
    import tempfile

    from deploycc.core.loader import load_model
    from deploycc.core.metadata import preprocessing_of
    from deploycc.models import export_onnx, resolve_arch
    from deploycc.passes import PassContext, resolve_passes, run_passes
    from deploycc.pipeline.pipeline import simplify

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(resolve_arch(net), Path(tmp) / f"{net}.onnx", [1, 3, *hw], weights=WEIGHTS / f"{net}.pth")
        model = load_model(path)
        graph, _ = run_passes(
            simplify(model, path), [c(PassContext()) for c in resolve_passes(list(passes))], verify=False
        )
    return graph, preprocessing_of(model)


def _scenes(seed: int, n: int, hw, prep):
    from deploycc.data.cityscapes import to_train_ids
    from deploycc.data.synth import scene
    from deploycc.quantize.calibration import preprocess

    pairs = [scene(seed, i, hw[0], hw[1]) for i in range(n)]
    return [preprocess(img, prep, hw)[None] for img, _ in pairs], [to_train_ids(lab, "synth") for _, lab in pairs]


def _photos(folder: str, hw, prep):
    """Every image of ``folder`` preprocessed at ``hw``, and its train-id labels where the folder is a
    dataset with labels (None for each photograph without)."""
    from deploycc.core.errors import UserError
    from deploycc.data import open_dataset
    from deploycc.data.io import read_image, resize_nearest
    from deploycc.quantize.calibration import image_files, preprocess

    try:
        data = open_dataset(folder, require_labels=False)
        pairs = [data.read(sample) for sample in data.samples]
    except UserError:  # not a dataset layout: a plain folder of photographs
        pairs = [(read_image(p), None) for p in image_files(Path(folder))]
    xs = [preprocess(img, prep, hw)[None] for img, _ in pairs]
    return xs, [None if lab is None else resize_nearest(lab, hw) for _, lab in pairs]


def _run(model, x, optimize: bool = True) -> np.ndarray:
    """``model`` on ORT: all optimizations and this CPU's exact INT8 kernels (what cpu-int8 runs and
    the sensitivity measures), or none (the FP16 simulation, as deploycc's proxies run it)."""
    import onnxruntime as ort

    from deploycc.targets.onnxruntime import int8_cpu

    so = ort.SessionOptions()
    int8_cpu.apply(so)
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {model.graph.input[0].name: x})[0]


def _margins(refs) -> dict:
    top = [np.sort(r[0], axis=0) for r in refs]
    m = np.concatenate([(t[-1] - t[-2]).ravel() for t in top])
    return {
        "p1": round(float(np.percentile(m, 1)), 4),
        "p5": round(float(np.percentile(m, 5)), 4),
        "median": round(float(np.median(m)), 3),
        "share_below_0.1": round(float(np.mean(m < 0.1)), 4),
    }


def _scores(refs, outs, labels) -> dict:
    from deploycc.core.accuracy import Agreement, Confusion, mean_iou

    classes = refs[0].shape[1]
    agreement, fp32, int8 = Agreement(classes), Confusion(classes), Confusion(classes)
    for r, o, y in zip(refs, outs, labels):
        agreement.add(r.argmax(1), o.argmax(1))
        if y is not None:
            fp32.add(y, r.argmax(1)[0])
            int8.add(y, o.argmax(1)[0])
    s = agreement.scores()
    scores: dict = {"agree": round(100 * s["pixel_agreement"], 2), "agree_miou_drop": round(100 * (1 - s["miou"]), 2)}
    if any(y is None for y in labels):
        return scores | {"label_miou_fp32": NO_LABELS, "label_miou_loss": NO_LABELS}
    return scores | {
        "label_miou_fp32": round(100 * mean_iou(fp32.matrix), 2),
        "label_miou_loss": round(100 * (mean_iou(fp32.matrix) - mean_iou(int8.matrix)), 2),
    }


def _print(net: str, target: str, row: str, s: dict) -> None:
    labels = (
        f"label mIoU {s['label_miou_fp32']:5.2f} loss {s['label_miou_loss']:+6.2f}"
        if s["label_miou_fp32"] != NO_LABELS
        else f"label mIoU {NO_LABELS}"
    )
    print(
        f"{net:10s} {target:16s} {row:8s} agree {s['agree']:6.2f} %  agreement-mIoU drop {s['agree_miou_drop']:6.2f}"
        f"  {labels}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
