"""The content-hashed build cache of ``deploycc ci``.

A (model, target) pair's key is the sha256 of everything its artifact depends on: the bytes of
the model (ONNX file and its external data, or the architecture file and weights), the input
shape, the full target definition, the calibration data (every file's bytes, or the synthetic
recipe), the build options, the toolchain versions (backend, ONNX, onnxsim, ONNX Runtime, torch,
NumPy, Python) and a digest of deploycc's own source (its pipeline, passes, targets and models),
so that a change to the pipeline rebuilds as surely as a change to the model.

An entry is ``<root>/<key[:2]>/<key>/`` holding ``artifact/`` and ``entry.json`` (the key's
inputs and the sha256 of the artifact's manifest, sealed by ``deploycc.core.cache``), written
last. An entry is served only when ``entry.json`` is a sound sealed entry of its key, the
manifest's hash matches it, every artifact file matches its hash in the manifest and no file is
there that the manifest does not list; anything else (a torn write, a flipped bit, an edited or
added file) is reported on one line, removed and rebuilt. An entry is built under its file lock:
a second ``deploycc ci`` on the same cache waits for it and then serves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

from deploycc.core.cache import (
    atomic_write_text,
    cpu_model,
    folder_problem,
    lock_for,
    not_data,
    remove_entry,
    report_bad,
    seal,
    source_digest,
    unseal,
)
from deploycc.core.errors import UserError
from deploycc.pipeline.artifact import MANIFEST, read_manifest, sha256_file

ENTRY = "entry.json"
KIND = "ci-build"

__all__ = ["BuildCache", "folder_digest", "key_of", "model_digest", "source_digest", "toolchain"]


def toolchain(backend_versions: dict) -> dict:
    import numpy
    import onnx
    import onnxruntime
    import onnxsim

    from deploycc import __version__

    versions = {
        "deploycc": __version__,
        "deploycc_source": source_digest(),
        "onnx": onnx.__version__,
        "onnxsim": getattr(onnxsim, "__version__", "?"),
        "onnxruntime": onnxruntime.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
    }
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
        """(artifact folder, "hit") for a sound entry; (None, "miss") or (None, "corrupt (why): rebuilt")."""
        folder = self.entry(key)
        if not os.path.lexists(folder):
            return None, "miss"
        problem = self._problem(folder, key)
        if problem is None:
            return folder / "artifact", "hit"
        report_bad(KIND, folder, problem)
        remove_entry(folder)
        return None, f"corrupt ({problem}): rebuilt"

    def _problem(self, folder: Path, key: str) -> str | None:
        for path in (folder, folder / ENTRY, folder / "artifact"):
            try:
                why = not_data(path)
            except FileNotFoundError:
                continue
            if why:
                return f"{path.name} is {why}"
        try:
            text = (folder / ENTRY).read_text()
        except (OSError, UnicodeDecodeError):
            return f"{ENTRY} missing or unreadable"
        record, problem = unseal(text, KIND, key, _record_problem)
        if problem:
            return f"{ENTRY}: {problem}"
        manifest = folder / "artifact" / MANIFEST
        if not manifest.is_file() or sha256_file(manifest) != record["manifest_sha256"]:
            return "the artifact's manifest does not match its recorded sha256"
        try:
            listed = read_manifest(folder / "artifact", check_hashes=True).get("files", {})
        except UserError as exc:
            return str(exc).split(": ", 1)[-1]
        return folder_problem(folder / "artifact", listed if isinstance(listed, dict) else {}, ignore=(MANIFEST,))

    def store(self, key: str, body: dict, build, reuse: bool = True) -> tuple[Path, bool]:
        """(artifact folder, served): under the entry's lock, serve the entry when another run built
        it meanwhile (``reuse``), else run ``build(artifact_folder)`` and seal the entry."""
        folder = self.entry(key)
        with lock_for(folder):
            if reuse and os.path.lexists(folder) and self._problem(folder, key) is None:
                return folder / "artifact", True
            remove_entry(folder)
            folder.mkdir(parents=True)
            artifact = folder / "artifact"
            try:
                build(artifact)
            except BaseException:
                remove_entry(folder)
                raise
            record = {
                "inputs": json.loads(json.dumps(body, default=str)),
                "manifest_sha256": sha256_file(artifact / MANIFEST),
            }
            atomic_write_text(folder / ENTRY, seal(KIND, key, record))
        return artifact, False


def _record_problem(record) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("manifest_sha256"), str):
        return "no manifest sha256"
    return None
