"""Artifacts: a directory with the compiled files and a ``manifest.json`` that describes them.

The manifest records the target, toolchain versions, the passes applied with their statistics,
input/output specs, preprocessing, the sha256 of every file, the numerical verification and what
remains to be done on the device. It holds no timestamps, so the same inputs give the same bytes.
An artifact is assembled in a temporary folder beside its destination and renamed into place
only when complete: an interrupted or failed build leaves nothing at the destination.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from deploycc.core.errors import UserError

MANIFEST = "manifest.json"
SCHEMA = "deploycc-artifact/1"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def staging_dir(dest: Path):
    """Yield a temporary folder beside ``dest``; on success it replaces ``dest`` atomically."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _replace(tmp, dest)


def _replace(tmp: Path, dest: Path) -> None:
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{tmp.name}")
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def write_manifest(folder: Path, manifest: dict) -> dict:
    """Add the schema and every file's sha256, then write ``manifest.json`` (sorted keys)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"schema": SCHEMA, **manifest,
                "files": {str(p.relative_to(folder)): sha256_file(p) for p in files}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(folder: str | Path, check_hashes: bool = True) -> dict:
    """The manifest of the artifact at ``folder``, with every file checked against its hash."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise UserError(f"{folder}: not an artifact folder (no such directory)")
    if not path.is_file():
        raise UserError(f"{folder}: not an artifact folder (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("schema") != SCHEMA:
        raise UserError(f"{path}: schema {manifest.get('schema')!r} is not {SCHEMA!r}")
    if check_hashes:
        for name, digest in manifest.get("files", {}).items():
            file = folder / name
            if not file.is_file():
                raise UserError(f"{folder}: file {name} listed in the manifest is missing")
            if sha256_file(file) != digest:
                raise UserError(f"{folder}: file {name} does not match its sha256 in the manifest (corrupt or edited)")
    return manifest
