"""Hostile inputs: special files, image bombs, huge external data, OS errors and unbounded CI
numbers are each one line and exit 2, before anything is read in full or decoded."""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import onnx
import pytest
from helpers import run_cli
from onnx import helper, numpy_helper
from PIL import Image

from deploycc.core.errors import UserError
from deploycc.core.loader import load_model
from deploycc.data.io import MAX_PIXELS, open_image


def _one_line(capsys, args, needle, code=2):
    assert run_cli(args) == code
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]  # the build's stage lines come first
    assert needle in last and last.startswith("error:") and "Traceback" not in err, err


def test_a_pipe_given_as_the_model_is_refused_at_once(tmp_path):
    """A reader of a pipe with no writer waits forever: run as a user would, with a deadline."""
    os.mkfifo(tmp_path / "m.onnx")
    code = "from deploycc.cli.main import entry; entry()"
    args = ["build", str(tmp_path / "m.onnx"), "-t", "cpu-ort", "-o", str(tmp_path / "o")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not a regular file" in done.stderr, done.stderr


def _png_declaring(path, width, height):
    """A valid 1x1 PNG whose header (IHDR, with its CRC fixed) claims ``width`` x ``height``."""
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr : ihdr + 17])))
    path.write_bytes(bytes(data))
    return path


def test_an_image_header_over_the_pixel_bound_is_refused_before_decoding(tmp_path):
    bomb = _png_declaring(tmp_path / "bomb.png", 9000, 9000)
    assert 9000 * 9000 > MAX_PIXELS
    with pytest.raises(UserError, match="header declares 9000x9000"):
        open_image(bomb)
    huge = _png_declaring(tmp_path / "huge.png", 60000, 60000)  # past Pillow's own bound too
    with pytest.raises(UserError, match="header declares more pixels"):
        open_image(huge)
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(UserError, match="not a regular file"):
        open_image(tmp_path / "pipe.png")


def test_the_memory_estimate_comes_before_any_external_byte_is_read(tmp_path, monkeypatch):
    """An initializer of 2**40 floats declared in external data (a sparse file: nothing on disk)
    is refused from its shape; reading it first would take the machine's memory."""
    w = numpy_helper.from_array(np.zeros((1, 1, 1, 1), np.float32), "w")
    w.ClearField("raw_data")
    w.dims[:] = [1 << 20, 1 << 20, 1, 1]
    w.data_location = onnx.TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", str(4 << 40))):
        w.external_data.add(key=k, value=v)
    with open(tmp_path / "w.bin", "wb") as fh:
        fh.truncate(4 << 40)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        "big",
        [helper.make_tensor_value_info("x", 1, [1, 1 << 20, 1, 1])],
        [helper.make_tensor_value_info("y", 1, None)],
        [w],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "big.onnx")
    reads = []
    monkeypatch.setattr(onnx.external_data_helper, "load_external_data_for_model", lambda *a: reads.append(a))
    with pytest.raises(UserError, match="GiB"):
        load_model(tmp_path / "big.onnx")
    assert reads == []


def test_os_errors_on_the_users_paths_are_one_line(tmp_path, tiny_onnx, capsys, monkeypatch):
    """A full disk or a read-only folder is the machine's doing, not a bug: exit 2, path and cause."""
    from deploycc.pipeline import pipeline

    for number in (errno.ENOSPC, errno.EROFS, errno.EACCES):

        def fail(*args, number=number, **kwargs):
            raise OSError(number, os.strerror(number), str(tmp_path / "o" / "model.onnx"))

        monkeypatch.setattr(pipeline, "write_manifest", fail)
        _one_line(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", tmp_path / "o"], os.strerror(number).lower())
        assert not (tmp_path / "o").exists()


def test_every_number_of_a_ci_project_file_has_a_range(tmp_path, capsys):
    base = 'targets = ["cpu-ort"]\n[project]\nname = "p"\n{project}\n[[models]]\nsource = "m.onnx"\n{data}'
    (tmp_path / "m.onnx").write_bytes(b"")
    cases = [
        ("threads = 100000000", "", "project.threads"),
        ("seed = -1", "", "project.seed"),
        ("", '[data]\nvalidation = { synth = { n = 1000000000, size = "64x128", seed = 0 } }', "synth.n"),
        ("", '[data]\nvalidation = { synth = { n = 2, size = "100000x100000", seed = 0 } }', "synth.size"),
        ("", "[timing]\nmax_seconds = 1e300", "timing.max_seconds"),
    ]
    for project, data, needle in cases:
        (tmp_path / "deploycc.toml").write_text(base.format(project=project, data=data))
        _one_line(capsys, ["ci", tmp_path / "deploycc.toml", "-o", tmp_path / "r"], needle)
