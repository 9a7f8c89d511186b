"""Benchmark of `deploycc verify`: throughput, data-path overhead and peak memory.

For the bundled reference net on `cpu` (TVM) and `cpu-ort`, in one run:

* the artifact's own latency (common protocol, random input) and the throughput it allows alone;
* `deploycc verify` images/s on synthetic scenes at the model's size and at a larger size
  (resized on the fly), for two image counts, each in a fresh process so that its peak RSS is its
  own; the ratio verify / artifact-alone throughput is the overhead of decoding, preprocessing,
  argmax and scoring (1.0 = none); peak RSS should not grow with the number of images;
* agreement with the FP32 ONNX reference and the mIoU on the synthetic labels.

With the published SqueezeNAS weights beside the checkout (../shared/data/squeezenas), also
mac_small at 1x3x1024x2048 on `cpu-ort`: verify throughput against its latency, agreement with
its FP32 reference and its mIoU on the synthetic street scenes (a net trained on real Cityscapes).

    nice -n 10 python bench/bench_verify.py [--counts 8,64] [--large 512x1024] [--targets cpu-ort,cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "models" / "zoo" / "trained" / "street_ref.onnx"
WEIGHTS = REPO.parent / "shared" / "data" / "squeezenas" / "mac_small.pth"

_RUN = (
    "import json, resource, sys; from deploycc.cli.main import main; rc = main(sys.argv[1:]); "
    "print(json.dumps({'rc': rc, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), "
    "file=sys.stderr)"
)


def deploycc(*args) -> tuple[dict, float]:
    """Run a deploycc command in a fresh process: (its --json report, its peak RSS in MB)."""
    proc = subprocess.run([sys.executable, "-c", _RUN, *map(str, args), "--json"], capture_output=True, text=True)
    tail = json.loads(proc.stderr.strip().splitlines()[-1])
    if tail["rc"] not in (0, 1):
        raise SystemExit(f"deploycc {' '.join(map(str, args))} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout), tail["peak_rss_mb"]


def synth(root: Path, name: str, n: int, size: str, seed: int) -> Path:
    out = root / name
    deploycc("data", "synth", "--out", out, "--n", n, "--size", size, "--seed", seed)
    return out


def artifact_latency(artifact: Path, threads: int) -> float:
    report, _ = deploycc("bench", artifact, "--threads", threads, "--max-repeats", 30, "--max-seconds", 30)
    return report["latency"]["median_ms"]


def bench_target(target: str, model: Path, datasets: dict, threads: int, work: Path, extra_build=()) -> list[dict]:
    artifact = work / f"{model.stem}.{target}"
    deploycc("build", model, "--target", target, "-o", artifact, "--threads", threads, *extra_build)
    latency = artifact_latency(artifact, threads)
    rows = []
    for name, (path, n, size) in datasets.items():
        report, rss = deploycc("verify", artifact, "--data", path, "--threads", threads)
        t = report["timing"]
        rows.append(
            {
                "target": target,
                "data": name,
                "images": n,
                "size": size,
                "artifact_ms": round(latency, 2),
                "alone_img_s": round(1e3 / latency, 2),
                "verify_img_s": round(t["images_per_second"], 2),
                "verify_vs_alone": round(t["images_per_second"] * latency / 1e3, 3),
                "wait_for_data_s": round(t["waiting_for_data_seconds"], 3),
                "decode_s_background": round(t["decode_seconds_in_background"], 3),
                "metrics_s": round(t["metrics_seconds"], 3),
                "peak_rss_mb": round(rss),
                "miou": round(report["accuracy"]["miou"], 4),
            }
        )
    first = next(iter(datasets.values()))
    report, _ = deploycc("verify", artifact, "--data", first[0], "--reference", model, "--threads", threads)
    rows[0]["agreement_pixels"] = report["agreement"]["pixel_agreement"]
    rows[0]["agreement_miou"] = report["agreement"]["miou"]
    rows[0]["miou_drop"] = report["miou_drop"]
    return rows


def published(work: Path, threads: int, n: int) -> list[dict]:
    from deploycc.models import export_onnx, resolve_arch

    reference = export_onnx(resolve_arch("mac_small"), work / "mac_small.onnx", weights=WEIGHTS)
    data = synth(work, "full", n, "1024x2048", 3)
    return bench_target("cpu-ort", reference, {"1024x2048": (data, n, "1024x2048")}, threads, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="8,64", help="image counts per dataset (peak memory must stay flat)")
    parser.add_argument("--large", default="512x1024", help="a larger scene size, resized to the model's input")
    parser.add_argument("--targets", default="cpu-ort,cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--published-n", type=int, default=4, help="scenes for mac_small at 1024x2048 (0: skip)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        work = Path(tmp)
        datasets = {}
        for n in counts:
            datasets[f"128x256 n={n}"] = (synth(work, f"small{n}", n, "128x256", 2), n, "128x256")
            datasets[f"{args.large} n={n}"] = (synth(work, f"large{n}", n, args.large, 2), n, args.large)
        for target in args.targets.split(","):
            rows += bench_target(target, MODEL, datasets, args.threads, work)
        if args.published_n and WEIGHTS.is_file():
            rows += [
                {**r, "target": "mac_small " + r["target"]} for r in published(work, args.threads, args.published_n)
            ]
        elif args.published_n:
            print(f"published weights not found at {WEIGHTS}: mac_small part skipped", file=sys.stderr)
    cols = [
        "target",
        "data",
        "artifact_ms",
        "alone_img_s",
        "verify_img_s",
        "verify_vs_alone",
        "wait_for_data_s",
        "decode_s_background",
        "peak_rss_mb",
        "miou",
        "agreement_pixels",
        "agreement_miou",
        "miou_drop",
    ]
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(_fmt(r.get(c, "")) for c in cols))
    print(json.dumps({"rows": rows}, indent=1))


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) and abs(v) < 10 else str(v)


if __name__ == "__main__":
    main()
