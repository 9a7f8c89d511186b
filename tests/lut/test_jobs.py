"""lut/jobs.py: a builder compiles each network once and a group's builds in parallel processes."""

from __future__ import annotations

import json
import shutil
from functools import partial

from deploycc.lut.jobs import Builder, Job


def _copy(source, folder):
    return shutil.copy(source, folder / "model.onnx")


def _job(tiny_onnx, job_id: str, build_key: str | None) -> Job:
    from deploycc.pipeline.pipeline import BuildOptions

    options = BuildOptions(verify_passes=False, threads=1)
    return Job(job_id, job_id, {}, partial(_copy, tiny_onnx), "cpu-ort", options, build_key)


def _manifest(artifact) -> dict:
    return json.loads((artifact / "manifest.json").read_text())


def test_each_network_is_built_once_and_a_group_in_parallel(tiny_onnx, tmp_path):
    builder = Builder(workers=2)
    try:
        group = [_job(tiny_onnx, "a", "net-1"), _job(tiny_onnx, "b", None), _job(tiny_onnx, "c", "net-1")]
        (a, a_s), (b, b_s), (c, c_s) = builder.build_group(group, tmp_path / "g1")
        assert a == c and a_s > 0 and c_s == 0.0  # the same network twice in one group: built once
        assert b.parent.parent == tmp_path / "g1" and b_s > 0  # no build key: built in the group's scratch
        assert _manifest(a)["target"]["name"] == _manifest(b)["target"]["name"] == "cpu-ort"
        (again, again_s), (other, other_s) = builder.build_group(
            [_job(tiny_onnx, "d", "net-1"), _job(tiny_onnx, "e", "net-2")], tmp_path / "g2"
        )
        assert again == a and again_s == 0.0  # a later group reuses the kept build
        assert other != a and other_s > 0 and (other / "manifest.json").is_file()
        kept = a.parent.parent
    finally:
        builder.close()
    assert not kept.exists()  # closing removes the kept builds
