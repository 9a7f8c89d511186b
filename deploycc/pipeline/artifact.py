"""Artifacts: a directory with the compiled files and a ``manifest.json`` that describes them.

The manifest records the target, toolchain versions, the passes applied with their statistics,
input/output specs, preprocessing, the sha256 of every file, the numerical verification and what
remains to be done on the device. It holds no timestamps, so the same inputs give the same bytes.
An artifact is assembled in a temporary folder beside its destination and renamed into place
only when complete: an interrupted or failed build leaves nothing at the destination.

The output path is the user's: :func:`check_output` lets a build write only where nothing is, or
over an existing deploycc artifact (a folder whose ``manifest.json`` has the artifact schema);
anything else needs ``overwrite`` (``build --overwrite``), and an output that is, holds or lies
inside an input, or is the current folder or one of its parents, is always refused. The swap of
a rebuilt artifact is one ``renameat2(RENAME_EXCHANGE)`` where the kernel has it (there is never a
moment without a complete artifact at the path); elsewhere two renames, and a run killed between
them is repaired by the next run, which renames the old artifact back. A build holds a file lock
per output path (in the cache's ``locks`` folder), so builds to one output take turns, and the
lock holder removes the staging and old folders that killed runs left beside the output.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from deploycc.core.cache import cache_home, lock_for, sha256_file
from deploycc.core.errors import UserError

MANIFEST = "manifest.json"
SCHEMA = "deploycc-artifact/1"

__all__ = [
    "MANIFEST",
    "SCHEMA",
    "check_output",
    "is_artifact",
    "read_manifest",
    "recover_output",
    "sha256_file",
    "staging_dir",
    "write_manifest",
]


def is_artifact(path: Path) -> bool:
    """A folder with a readable deploycc artifact manifest (its files may still be corrupt)."""
    try:
        return json.loads((Path(path) / MANIFEST).read_text()).get("schema") == SCHEMA
    except (OSError, ValueError, AttributeError):
        return False


def check_output(out: str | Path, inputs: list, overwrite: bool = False) -> Path:
    """``out`` as an absolute path when a build may write there, else one line (UserError)."""
    out = Path(os.path.abspath(out))
    real = out.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise UserError(f"-o {out}: is the current folder or one of its parents; name a new folder")
    for item in inputs:
        if item is None or not Path(item).exists():
            continue
        source = Path(item).resolve()
        if real == source or source in real.parents:
            raise UserError(f"-o {out}: is or lies inside the input {item}; choose another output path")
        if real in source.parents:
            raise UserError(f"-o {out}: holds the input {item}, which replacing it would delete")
    if out.parent.exists() and not out.parent.is_dir():
        raise UserError(f"-o {out}: {out.parent} is not a folder")
    if (out.exists() or out.is_symlink()) and not is_artifact(out) and not overwrite:
        what = "folder" if out.is_dir() else "file"
        raise UserError(
            f"-o {out}: an existing {what} that is not a deploycc artifact (no {MANIFEST}); "
            "choose another path or pass --overwrite to replace it"
        )
    return out


def output_lock(dest: Path):
    """The file lock of one output path (kept in the cache, not beside the user's files)."""
    digest = hashlib.sha256(str(Path(os.path.abspath(dest))).encode()).hexdigest()[:32]
    return lock_for(cache_home() / "locks" / f"output-{digest}")


@contextmanager
def staging_dir(dest: Path):
    """Yield a temporary folder beside ``dest``; on success it replaces ``dest`` atomically.
    Holds ``dest``'s output lock throughout, and first clears what killed runs left beside it."""
    dest = Path(os.path.abspath(dest))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(dest):
        recover_output(dest)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _replace(tmp, dest)


def recover_output(dest: Path) -> list[Path]:
    """Under ``dest``'s output lock: put back an artifact that a run killed mid-swap left renamed
    aside, and remove the staging and old folders of killed runs. Returns what was removed."""
    olds = sorted(dest.parent.glob(f".{dest.name}.old-*"))
    if not (dest.exists() or dest.is_symlink()):
        sound = [p for p in olds if is_artifact(p)]
        if sound:
            sound[-1].rename(dest)
            olds.remove(sound[-1])
    removed = olds + sorted(dest.parent.glob(f".{dest.name}.*.partial"))
    for path in removed:
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() and not path.is_symlink() else path.unlink()
    return removed


def _replace(tmp: Path, dest: Path) -> None:
    if (dest.exists() or dest.is_symlink()) and _exchange(tmp, dest):
        old = tmp  # holds what was at dest
    else:
        old = None
        if dest.exists() or dest.is_symlink():
            old = dest.with_name(f".{dest.name}.old-{tmp.name}")
            dest.rename(old)
        tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() and not old.is_symlink() else old.unlink()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where the
    C library or the file system has no such call, so the caller falls back to two renames."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def write_manifest(folder: Path, manifest: dict) -> dict:
    """Add the schema and every file's sha256, then write ``manifest.json`` (sorted keys)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest = {"schema": SCHEMA, **manifest, "files": {str(p.relative_to(folder)): sha256_file(p) for p in files}}
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
