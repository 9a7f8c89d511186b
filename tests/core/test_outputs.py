"""One output policy for every command that writes (deploycc.core.outputs)."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.core.outputs import (
    check_output,
    clean_stale_staging,
    manifest_problem,
    only_names,
    staging_path,
    write_output_bytes,
)

DEAD = 999999999


def _exit_2(capsys, args, needle):
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_existing_file_is_replaced_only_with_overwrite(tmp_path, tiny_onnx, capsys):
    """optimize, export and run refuse an existing file; --overwrite replaces it."""
    for args in (
        ["optimize", tiny_onnx, "-o", tmp_path / "out.onnx"],
        ["export", "fbnet_a", "--input-shape", "1x3x64x128", "-o", tmp_path / "out.onnx"],
    ):
        (tmp_path / "out.onnx").write_text("mine")
        _exit_2(capsys, args, "pass --overwrite")
        assert (tmp_path / "out.onnx").read_text() == "mine"
        assert run_cli([*args, "--overwrite"]) == 0
        assert (tmp_path / "out.onnx").stat().st_size > 100
    assert not [p for p in tmp_path.iterdir() if ".deploycc-" in p.name]


def test_run_refuses_its_own_input_and_an_existing_file(tmp_path, tiny_onnx, capsys):
    art = tmp_path / "art"
    assert run_cli(["build", tiny_onnx, "-t", "cpu-ort", "-o", art]) == 0
    capsys.readouterr()
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 16, 16), np.float32))
    before = x.read_bytes()
    _exit_2(capsys, ["run", art, "-i", x, "-o", x, "--overwrite"], "is or lies inside the input")
    assert x.read_bytes() == before
    (tmp_path / "y.npy").write_text("mine")
    _exit_2(capsys, ["run", art, "-i", x, "-o", tmp_path / "y.npy"], "pass --overwrite")
    assert run_cli(["run", art, "-i", x, "-o", tmp_path / "y.npy", "--overwrite"]) == 0
    assert np.load(tmp_path / "y.npy").shape[0] == 1


def test_optimize_never_writes_over_its_input(tmp_path, tiny_onnx, capsys):
    before = tiny_onnx.read_bytes()
    _exit_2(capsys, ["optimize", tiny_onnx, "-o", tiny_onnx, "--overwrite"], "is or lies inside the input")
    _exit_2(capsys, ["optimize", tiny_onnx, "-o", tmp_path / "o.onnx", "--trace", tiny_onnx], "--trace")
    assert tiny_onnx.read_bytes() == before


def test_report_files_follow_the_policy(tmp_path, tiny_onnx, capsys):
    (tmp_path / "r.html").write_text("mine")
    _exit_2(capsys, ["inspect", tiny_onnx, "--report", tmp_path / "r.html"], "--report")
    assert (tmp_path / "r.html").read_text() == "mine"
    assert run_cli(["inspect", tiny_onnx, "--report", tmp_path / "r.html", "--overwrite"]) == 0
    assert "<html" in (tmp_path / "r.html").read_text()


def test_special_files_links_and_bad_names_are_refused(tmp_path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "s"))
    try:
        with pytest.raises(UserError, match="special file"):
            check_output(tmp_path / "s", [], overwrite=True)
    finally:
        sock.close()
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UserError, match="special file"):
        check_output(tmp_path / "fifo", [], overwrite=True)
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(UserError, match="a link"):
        check_output(tmp_path / "link", [])
    with pytest.raises(UserError, match="NUL byte"):
        check_output(f"{tmp_path}/a\0b", [])
    with pytest.raises(UserError, match="longer than"):
        check_output(tmp_path / ("n" * 250), [])


def test_a_folder_is_ours_only_with_exactly_its_listed_files(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    digest = __import__("hashlib").sha256(b"a").hexdigest()
    (folder / "manifest.json").write_text(json.dumps({"files": {"a.bin": digest}}))
    assert manifest_problem(folder) is None
    (folder / "mine.txt").write_text("x")
    assert "did not write (mine.txt)" in manifest_problem(folder)
    (folder / "mine.txt").unlink()
    (folder / "a.bin").write_bytes(b"b")
    assert "does not match its sha256" in manifest_problem(folder)
    (folder / "manifest.json").write_text('{"schema":"deploycc-artifact/1"}')
    assert manifest_problem(folder) == "manifest.json lists no files"
    with pytest.raises(UserError, match=r"did not write \(a.bin, manifest.json\)"):
        check_output(folder, [], ours=only_names(["report.json"]))
    assert check_output(folder, [], ours=only_names(["a.bin", "manifest.json"])) == folder


def test_staging_names_are_per_run_and_only_dead_ones_are_cleaned(tmp_path):
    dest = tmp_path / "out[1]*"
    a, b = staging_path(dest), staging_path(dest)
    assert a != b and str(os.getpid()) in a.name
    live = tmp_path / f".out.deploycc-{os.getpid()}-ab.partial"
    dead = tmp_path / f".out.deploycc-{DEAD}-cd.partial"
    dead_old_of_missing = tmp_path / f".gone.deploycc-{DEAD}-ef.old"
    user = tmp_path / ".out.mine.partial"
    for p in (live, dead, dead_old_of_missing, user):
        p.mkdir()
    assert clean_stale_staging(tmp_path) == [dead]
    assert live.exists() and user.exists() and dead_old_of_missing.exists()
    write_output_bytes(tmp_path / "x.json", b"{}")
    assert (tmp_path / "x.json").read_bytes() == b"{}"


def test_data_synth_cleans_what_a_killed_run_left(tmp_path):
    from deploycc.data.synth import write_split

    left = tmp_path / f".synth-val.deploycc-{DEAD}-0a.partial"
    left.mkdir(parents=True)
    (left / "half.png").write_bytes(b"x")
    write_split(tmp_path, "val", 1, (32, 64), 0)
    assert not left.exists() and (tmp_path / "synth_val.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gtFine", "leftImg8bit", "synth_val.json"]
