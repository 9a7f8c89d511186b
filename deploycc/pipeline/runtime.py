"""Open any artifact as a Session, whatever backend made it."""

from __future__ import annotations

from pathlib import Path

from deploycc.pipeline.artifact import read_manifest
from deploycc.targets.backend import Session, get_backend


def open_artifact(path: str | Path, threads: int | None = None) -> tuple[dict, Session]:
    """(manifest, Session) for the artifact folder at ``path``; files are checked against their hashes."""
    path = Path(path)
    manifest = read_manifest(path)
    if threads is not None:
        manifest = {**manifest, "runtime": {**manifest.get("runtime", {}), "threads": threads}}
    backend = get_backend(manifest["backend"])
    return manifest, backend.load(path, manifest)
