"""The wheel as users get it: built from the sources, installed into a fresh virtual environment
without network, and run from outside the checkout.

The wheel is built from a copy of the package folders (``pip wheel --no-deps --no-build-isolation``,
so nothing is fetched and the checkout gets no build/ or egg-info). The virtual environment reaches
the dependencies through a ``.pth`` line naming this environment's site-packages: a plain path, so
the editable install's own ``.pth`` there is not processed and ``deploycc`` is the installed copy.
The bundled model is built from the installed copy for ``cpu`` and ``cpu-ort``, and for a target
file pinned to the CPU the shipped tuning records were measured on (read from the records), so
the shipped records are shown to apply from the wheel on any machine (and TVM's log line about
the database they are in goes to the build log, not the console); on this machine's own ``cpu``
target they apply exactly when its CPU has a shipped database.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import REPO

# the package folders (pyproject's package-dir) and the files setuptools needs besides them
PACKAGE_DIRS = {
    "deploycc": "deploycc",
    "passes": "deploycc/passes",
    "targets": "deploycc/targets",
    "models": "deploycc/models",
}
PROJECT_FILES = ("pyproject.toml", "README.md")
SHIPPED = REPO / "targets" / "tvm" / "shipped_tuning"
CHECKOUT_CLI = (sys.executable, "-c", "from deploycc.cli.main import entry; entry()")  # run in REPO: its sources
TVM_LOG_LINE = "Creating JSONDatabase"  # TVM's C++ LOG(WARNING) when a tuning database is applied


def _run(cmd: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kwargs)
    assert result.returncode == 0, f"{cmd}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in PROJECT_FILES:
        shutil.copy2(REPO / name, src / name)
    for folder in PACKAGE_DIRS:
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", out, src])
    (built,) = out.glob("deploycc-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("venv")
    _run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    ours = sysconfig.get_paths()
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in dict.fromkeys((ours["purelib"], ours["platlib"]))))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    _run([*pip, "install", "--no-deps", "--no-index", "-q", wheel])
    return root / "bin"


def _user_env(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["DEPLOYCC_CACHE"] = str(cache)
    return env


def test_the_wheel_holds_every_file_of_the_packages(wheel):
    """Every module and every data file in the package folders (target TOMLs, the zoo, the trained
    reference net, the shipped tuning databases, the fleet's RPC server script) is in the wheel."""
    sources = {
        f"{prefix}/{p.relative_to(REPO / folder).as_posix()}"
        for folder, prefix in PACKAGE_DIRS.items()
        for p in (REPO / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    with zipfile.ZipFile(wheel) as z:
        packed = {n for n in z.namelist() if not n.split("/")[0].endswith(".dist-info")}
    assert sources - packed == set(), f"left out of the wheel: {sorted(sources - packed)}"
    assert packed - sources == set(), f"in the wheel but not in the sources: {sorted(packed - sources)}"


def _shipped_target() -> tuple[str, dict]:
    """A shipped database's key and the TVM target its records were measured for."""
    key = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir())[0]
    with gzip.open(SHIPPED / key / "database_tuning_record.json.gz", "rt") as f:
        return key, json.loads(f.readline())[1][2]


def test_the_installed_wheel_builds_the_bundled_model_for_cpu_and_cpu_ort(venv, tmp_path):
    site_deploycc = Path(
        _run([venv / "python", "-c", "import deploycc; print(deploycc.__file__)"], cwd=tmp_path).stdout.strip()
    ).parent
    assert REPO not in site_deploycc.parents and venv.parent in site_deploycc.parents, site_deploycc
    model = site_deploycc / "models" / "zoo" / "trained" / "street_ref.onnx"
    assert model.read_bytes() == (REPO / "models" / "zoo" / "trained" / "street_ref.onnx").read_bytes()
    key, tuned_for = _shipped_target()
    pinned = tmp_path / "cpu-shipped.toml"
    pinned.write_text(
        (site_deploycc / "targets" / "cpu.toml")
        .read_text()
        .replace('name = "cpu"', 'name = "cpu-shipped"')
        .replace('mcpu = "host"', f'mcpu = "{tuned_for["mcpu"]}"')
        .replace("num-cores = 2", f"num-cores = {tuned_for['num-cores']}")
    )
    builds = {name: tmp_path / name for name in ("cpu", "cpu-ort", "cpu-shipped", "cpu-ort-from-checkout")}
    commands = {
        "cpu": [venv / "deploycc", "build", model, "--target", "cpu"],
        "cpu-ort": [venv / "deploycc", "build", model, "--target", "cpu-ort"],
        "cpu-shipped": [venv / "deploycc", "build", model, "--target", pinned],
        "cpu-ort-from-checkout": [*CHECKOUT_CLI, "build", model, "--target", "cpu-ort"],
    }
    running = {
        name: subprocess.Popen(
            [str(c) for c in [*command, "-o", builds[name] / "a", "--json"]],
            cwd=REPO if name.endswith("from-checkout") else tmp_path,
            env=_user_env(builds[name] / "cache"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, command in commands.items()
    }
    done = {name: (p, *p.communicate(timeout=900)) for name, p in running.items()}  # the builds run side by side
    for name, (proc, _, stderr) in done.items():
        assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{stderr[-3000:]}"
    manifests = {name: json.loads((out / "a" / "manifest.json").read_text()) for name, out in builds.items()}
    assert manifests["cpu-ort"]["backend"] == "ort" and manifests["cpu-ort"]["verification"]["status"] == "passed"
    assert manifests["cpu-ort"]["files"] == manifests["cpu-ort-from-checkout"]["files"]  # the same artifact bytes

    # the pinned target: the shipped records apply from the wheel
    info = manifests["cpu-shipped"]["backend_info"]
    assert hashlib.sha256(info["target"].encode()).hexdigest()[:16] == key, info["target"]
    assert info["tuning_database"]["name"] == f"{key}.shipped", info["tuning_database"]  # a name, never a path
    assert info["schedules"]["tuned"] >= 1, info["schedules"]
    _, stdout, stderr = done["cpu-shipped"]  # TVM's own log lines: in the build log, not on the console
    assert TVM_LOG_LINE not in stderr, stderr
    assert any(TVM_LOG_LINE in line for line in json.loads(stdout)["log"]["compiler_log"]), stdout[-3000:]

    # this machine's cpu target: applied exactly when its CPU has a shipped database
    info = manifests["cpu"]["backend_info"]
    host_key = hashlib.sha256(info["target"].encode()).hexdigest()[:16]
    if (SHIPPED / host_key).is_dir():
        assert info["tuning_database"]["name"] == f"{host_key}.shipped", info["tuning_database"]
        assert info["schedules"]["tuned"] >= 1, info["schedules"]
    else:
        assert info["tuning_database"] is None and info["schedules"]["tuned"] == 0, info
