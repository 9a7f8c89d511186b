"""The output path is the user's: refusals, --overwrite, crash-safe swap, cleanup of killed runs."""

from __future__ import annotations

import os
import shutil

import pytest
from helpers import run_cli

from deploycc.core.errors import UserError
from deploycc.core.scratch import clean_stale_scratch
from deploycc.pipeline.artifact import check_output, is_artifact, read_manifest, recover_output
from deploycc.pipeline.pipeline import build


def _one_line_exit_2(capsys, args, needle):
    assert run_cli(args) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "Traceback" not in err, err
    return err


def test_existing_folder_that_is_not_an_artifact_is_kept(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _one_line_exit_2(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", out], "not a deploycc artifact")
    assert (out / "notes.txt").read_text() == "mine"
    assert run_cli(["build", tiny_onnx, "-t", "cpu-ort", "-o", out, "--overwrite"]) == 0
    assert is_artifact(out) and not (out / "notes.txt").exists()


def test_output_equal_to_or_inside_or_holding_the_input_is_refused(tmp_path, tiny_onnx, capsys):
    before = tiny_onnx.read_bytes()
    for out, needle in (
        (tiny_onnx, "is or lies inside the input"),
        (tiny_onnx / "sub", "is or lies inside the input"),
        (tmp_path, "holds the input"),
    ):
        _one_line_exit_2(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", out, "--overwrite"], needle)
    assert tiny_onnx.read_bytes() == before


def test_current_folder_is_refused_and_nothing_is_left_there(tmp_path, tiny_onnx, capsys, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    _one_line_exit_2(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", ".", "--overwrite"], "current folder")
    assert list(work.iterdir()) == [] and not list(tmp_path.glob("..*"))


def test_an_artifact_is_replaced(tmp_path, tiny_onnx):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    build(str(tiny_onnx), "cpu", out)
    assert read_manifest(out)["target"]["name"] == "cpu"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "tiny.onnx"]


def test_missing_input_makes_no_staging_folder(tmp_path, capsys):
    _one_line_exit_2(
        capsys, ["build", tmp_path / "missing.onnx", "-t", "cpu-ort", "-o", tmp_path / "o"], "missing.onnx"
    )
    assert list(tmp_path.iterdir()) == []


def test_next_run_cleans_what_killed_runs_left(tmp_path, tiny_onnx):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    # a run killed while staging, and one killed between the two renames of the fallback swap
    dead = 999999999
    (tmp_path / f".art.deploycc-{dead}-a1.partial").mkdir()
    (tmp_path / f".art.deploycc-{dead}-a1.partial" / "model.onnx").write_bytes(b"half")
    out.rename(tmp_path / f".art.deploycc-{dead}-b2.old")
    assert recover_output(out)  # the artifact is put back, the staging folder removed
    assert is_artifact(out) and sorted(p.name for p in tmp_path.iterdir()) == ["art", "tiny.onnx"]
    (tmp_path / f".art.deploycc-{dead}-c3.partial").mkdir()
    build(str(tiny_onnx), "cpu-ort", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "tiny.onnx"]


def test_staging_of_a_live_run_and_of_a_sibling_output_is_kept(tmp_path, tiny_onnx):
    """Builds into ``a`` and ``a.b`` (and ``a*``) of one folder never remove each other's staging;
    a dead run's staging is removed when any output of the folder is written."""
    live = [tmp_path / f".a.b.deploycc-{os.getpid()}-d4.partial", tmp_path / f".a.deploycc-{os.getpid()}-e5.partial"]
    dead = tmp_path / ".other.deploycc-999999999-f6.partial"
    for p in (*live, dead):
        p.mkdir()
    build(str(tiny_onnx), "cpu-ort", tmp_path / "a*")
    build(str(tiny_onnx), "cpu-ort", tmp_path / "a")
    assert all(p.is_dir() for p in live) and not dead.exists()


def test_a_one_line_manifest_does_not_make_a_folder_an_artifact(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "manifest.json").write_text('{"schema":"deploycc-artifact/1"}')
    (out / "thesis.tex").write_text("mine")
    _one_line_exit_2(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", out], "not a deploycc artifact")
    assert (out / "thesis.tex").read_text() == "mine"


def test_a_file_the_user_added_inside_an_artifact_is_kept(tmp_path, tiny_onnx, capsys):
    out = tmp_path / "art"
    build(str(tiny_onnx), "cpu-ort", out)
    (out / "notes.txt").write_text("mine")
    err = _one_line_exit_2(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", out], "did not write (notes.txt)")
    assert "--overwrite" in err and (out / "notes.txt").read_text() == "mine"


def test_names_no_file_system_takes_are_one_line(tmp_path, tiny_onnx, capsys):
    _one_line_exit_2(capsys, ["build", tiny_onnx, "-t", "cpu-ort", "-o", tmp_path / ("x" * 300)], "longer than")
    with pytest.raises(UserError, match="NUL byte"):
        check_output(str(tmp_path / "a\0b"), [])


def test_stale_scratch_folders_of_dead_processes_are_removed(tmp_path):
    dead = tmp_path / "deploycc-999999999-quant-abc"
    live = tmp_path / f"deploycc-{os.getpid()}-abc"
    other = tmp_path / "deploycc-notmine"
    for p in (dead, live, other):
        p.mkdir()
    assert clean_stale_scratch(tmp_path) == [dead]
    assert live.exists() and other.exists() and not dead.exists()
    shutil.rmtree(live)


def test_check_output_allows_absent_and_artifact_paths(tmp_path):
    assert check_output(tmp_path / "new" / "art", []) == tmp_path / "new" / "art"
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="existing file that is not a deploycc artifact"):
        check_output(tmp_path / "f", [])
    with pytest.raises(UserError, match="is not a folder"):
        check_output(tmp_path / "f" / "sub", [])
