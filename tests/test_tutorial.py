"""docs/tutorial.md and the README's command table cannot drift from the command line.

Fast (default run): every ``deploycc`` line of the tutorial (the Jetson blocks included) parses
against the real command line (commands, options, arguments), and every row of the README's
command table names a real command and only its real options, and lists every command.

Slow (``-m slow``, several minutes): every ``sh`` block of the tutorial runs, in order, in an empty
folder, with ``deploycc`` on PATH running this checkout; each must exit 0, and the Jetson block's
``build --resume`` names the bundle the build made.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

TUTORIAL = REPO / "docs" / "tutorial.md"


def blocks(markdown: str) -> list[tuple[str, str]]:
    """(info string, text) of every fenced code block."""
    return [
        (m.group(1).strip(), m.group(2)) for m in re.finditer(r"^```([^\n]*)\n(.*?)^```\s*$", markdown, re.M | re.S)
    ]


def command_lines(script: str) -> list[str]:
    """The ``deploycc ...`` commands of a shell block: continuations joined, here-documents skipped."""
    out, heredoc = [], None
    for line in script.replace("\\\n", " ").splitlines():
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        marker = re.search(r"<<'?(\w+)'?", line)
        if marker:
            heredoc = marker.group(1)
        if line.strip().startswith("deploycc "):
            out.append(line.split(" #")[0].strip())
    return out


def _root():
    from typer.main import get_command

    from deploycc.cli.main import app

    return get_command(app)


def resolve(words: list[str]):
    """(the command a line names, its path, the words after it)."""
    cmd, path = _root(), []
    while words and hasattr(cmd, "commands") and words[0] in cmd.commands:
        path.append(words[0])
        cmd = cmd.commands[words.pop(0)]
    return cmd, path, words


def leaf_commands(cmd=None, path=()) -> set[str]:
    cmd = cmd or _root()
    if not hasattr(cmd, "commands"):
        return {" ".join(path)}
    return set().union(*(leaf_commands(c, (*path, n)) for n, c in cmd.commands.items()))


def options_of(cmd) -> set[str]:
    return {o for p in cmd.params for o in (*getattr(p, "opts", []), *getattr(p, "secondary_opts", []))}


# ---------------------------------------------------------------- fast


def test_the_tutorial_has_the_blocks_it_promises():
    found = blocks(TUTORIAL.read_text())
    assert sum(info == "sh" for info, _ in found) >= 6
    jetson = "\n".join(text for info, text in found if info == "sh jetson")
    assert "deploycc build --resume my_net.xavier-int8" in jetson and "deploycc ci" in jetson
    run = "\n".join(text for info, text in found if info == "sh")
    for step in ("deploycc train", "deploycc export", "--target cpu-ort", "--target xavier-int8", "lut validate"):
        assert step in run


def test_every_tutorial_command_parses_against_the_command_line():
    problems = []
    for _, text in blocks(TUTORIAL.read_text()):
        for line in command_lines(text):
            cmd, path, rest = resolve(shlex.split(line)[1:])
            if hasattr(cmd, "commands"):
                problems.append(f"{line}: no such command")
                continue
            try:
                cmd.make_context(" ".join(["deploycc", *path]), rest)
            except Exception as exc:
                problems.append(f"{line}: {exc}")
    assert not problems, "\n".join(problems)


def readme_command_rows() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    return [line.split(" | ")[0] for line in section.splitlines() if line.startswith("| `")]


def test_the_readme_command_table_matches_the_command_line():
    problems, named = [], set()
    for cell in readme_command_rows():
        for usage in re.findall(r"`(deploycc [^`]*)`", cell):
            cmd, path, rest = resolve(usage.split()[1:])
            if not path and usage.split()[1:2] != ["--version"]:
                problems.append(f"{usage}: names no command")
                continue
            named.add(" ".join(path))
            known = options_of(cmd)
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])", " ".join(rest)):
                if flag not in known:
                    problems.append(f"{usage}: {' '.join(path) or 'deploycc'} has no option {flag}")
    missing = leaf_commands() - named
    assert not problems, "\n".join(problems)
    assert not missing, f"commands missing from the README's table: {sorted(missing)}"


def test_the_checker_sees_a_wrong_flag_and_a_missing_command():
    cmd, path, _ = resolve(["lut", "friendliness", "--html-out", "x"])
    assert path == ["lut", "friendliness"] and "--html-out" not in options_of(cmd)
    assert "device emulate-arm64" in leaf_commands() and "lut friendliness" in leaf_commands()
    with pytest.raises(Exception, match="--bogus"):
        resolve(["build", "m.onnx", "--bogus"])[0].make_context("deploycc build", ["m.onnx", "--bogus"])


# ---------------------------------------------------------------- slow: run it


@pytest.mark.slow
def test_the_tutorial_runs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "deploycc"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -c "from deploycc.cli.main import entry; entry()" "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "DEPLOYCC_CACHE": str(tmp_path / "cache"),
    }
    for i, (info, text) in enumerate(blocks(TUTORIAL.read_text())):
        if info != "sh":
            continue
        done = subprocess.run(["bash", "-e", "-c", text], cwd=work, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (
            f"block {i} exit {done.returncode}:\n{text}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    import json

    manifest = json.loads((work / "my_net.xavier-int8" / "manifest.json").read_text())
    resume = manifest["remaining"][0]["command"]
    assert resume.startswith("deploycc build --resume") and Path(resume.split()[-1]).name == "my_net.xavier-int8"
    assert (work / "ci-reports" / "junit.xml").is_file() and (work / "my_space.validation" / "report.md").is_file()
