"""The content-hashed build cache of ``deploycc ci``.

A (model, target) pair's key is the sha256 of everything its artifact depends on: the bytes of
the model (ONNX file and its external data, or the architecture file and weights), the input
shape, the full target definition, the calibration data (every file's bytes, or the synthetic
recipe), the build options, the toolchain versions (backend, ONNX, onnxsim, ONNX Runtime, torch,
NumPy, Python) and a digest of deploycc's own source (its pipeline, passes, targets and models),
so that a change to the pipeline rebuilds as surely as a change to the model.

An entry is ``<root>/<key[:2]>/<key>/`` holding ``artifact/`` and ``entry.json`` (the key's
inputs and the sha256 of the artifact's manifest), written last. An entry is served only when
``entry.json`` reads, the manifest's hash matches it and every artifact file matches its hash in
the manifest; anything else (a torn write, a flipped bit, an edited file) is reported as corrupt,
removed and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from functools import lru_cache
from pathlib import Path

from deploycc.build.artifact import MANIFEST, read_manifest, sha256_file
from deploycc.core.errors import UserError

ENTRY = "entry.json"
SCHEMA = "deploycc-ci-cache/1"


# deploycc's own files that cannot change what a build produces: the command line (commands and
# their output), this CI runner, the fleet and the LUT tools. Editing them does not invalidate the cache.
_NOT_BUILD = ("cli/", "ci/", "fleet/", "lut/")


@lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 over deploycc's own .py/.toml/.json sources that take part in a build (engine,
    passes, targets, models; see ``_NOT_BUILD`` for what is left out)."""
    import deploycc
    import deploycc.models
    import deploycc.passes
    import deploycc.targets
    digest = hashlib.sha256()
    for package in (deploycc, deploycc.passes, deploycc.targets, deploycc.models):
        root = Path(package.__file__).resolve().parent
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            skip = package is deploycc and rel.startswith(_NOT_BUILD)
            if path.suffix in (".py", ".toml", ".json") and "__pycache__" not in path.parts and not skip:
                digest.update(f"{package.__name__}/{path.relative_to(root)}".encode())
                digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def toolchain(backend_versions: dict) -> dict:
    import numpy
    import onnx
    import onnxruntime
    import onnxsim

    from deploycc import __version__
    versions = {"deploycc": __version__, "deploycc_source": source_digest(), "onnx": onnx.__version__,
                "onnxsim": getattr(onnxsim, "__version__", "?"), "onnxruntime": onnxruntime.__version__,
                "numpy": numpy.__version__, "python": platform.python_version(), "machine": platform.machine()}
    try:
        import torch
        versions["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        versions["torch"] = "absent"
    return {**versions, **backend_versions}


def model_digest(source: str, weights: Path | None) -> dict:
    """Hashes of the files the model is made from (zoo names resolve to their .json file)."""
    path = Path(source)
    if not path.exists():
        from deploycc.models import zoo_path
        path = zoo_path(source)
    files = {path.name: sha256_file(path)}
    if path.suffix == ".onnx":
        files.update(_external_data(path))
    if weights is not None:
        files[f"weights:{weights.name}"] = sha256_file(weights)
    return files


def _external_data(path: Path) -> dict:
    import onnx
    from onnx.external_data_helper import uses_external_data
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return {}  # the build's loader reports an unreadable model with its own line
    out = {}
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), None)
            file = path.parent / location if location else None
            if file is not None and file.is_file() and location not in out:
                out[f"external:{location}"] = sha256_file(file)
    return out


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes (calibration sets are small)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        digest.update(sha256_file(path).encode())
    return digest.hexdigest()


def key_of(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> tuple[Path | None, str]:
        """(artifact folder, "hit") for a sound entry; (None, "miss") or (None, "corrupt: why")."""
        folder = self.entry(key)
        if not folder.exists():
            return None, "miss"
        problem = self._problem(folder, key)
        if problem is None:
            return folder / "artifact", "hit"
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"corrupt ({problem}): rebuilt"

    def _problem(self, folder: Path, key: str) -> str | None:
        try:
            record = json.loads((folder / ENTRY).read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return f"{ENTRY} missing or unreadable"
        if record.get("schema") != SCHEMA or record.get("key") != key:
            return f"{ENTRY} is for another key or format"
        manifest = folder / "artifact" / MANIFEST
        if not manifest.is_file() or sha256_file(manifest) != record.get("manifest_sha256"):
            return "the artifact's manifest does not match its recorded sha256"
        try:
            read_manifest(folder / "artifact", check_hashes=True)
        except UserError as exc:
            return str(exc).split(": ", 1)[-1]
        return None

    def store(self, key: str, body: dict, build) -> Path:
        """Run ``build(artifact_folder)`` for ``key`` and seal the entry; returns the artifact folder."""
        folder = self.entry(key)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        artifact = folder / "artifact"
        try:
            build(artifact)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        record = {"schema": SCHEMA, "key": key, "inputs": body,
                  "manifest_sha256": sha256_file(artifact / MANIFEST)}
        tmp = folder / f".{ENTRY}.tmp{os.getpid()}"
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, folder / ENTRY)
        return artifact
