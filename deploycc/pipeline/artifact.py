"""Artifacts: a directory with the compiled files and a ``manifest.json`` that describes them.

The manifest records the target, toolchain versions, the passes applied with their statistics,
input/output specs, preprocessing, the sha256 of every file, the numerical verification and what
remains to be done on the device. It holds no timestamps, so the same inputs give the same bytes.
An artifact is assembled in a temporary folder beside its destination and renamed into place
only when complete: an interrupted or failed build leaves nothing at the destination.

The output path is the user's: :func:`check_output` (the policy of ``deploycc.core.outputs``)
lets a build write only where nothing is, or over an intact deploycc artifact (a folder holding
exactly the files its manifest lists, each with its sha256: a file the user added inside it makes
the rebuild a refusal, not a deletion); anything else needs ``overwrite`` (``build --overwrite``),
and an output that is, holds or lies inside an input, or is the current folder or one of its
parents, is always refused. The swap of a rebuilt artifact is one ``renameat2(RENAME_EXCHANGE)``
where the kernel has it (there is never a moment without a complete artifact at the path);
elsewhere two renames, and a run killed between them is repaired by the next run, which renames
the old artifact back. A build holds a file lock per output path (in the cache's ``locks``
folder), so builds to one output take turns. Staging folders are named per run and process
(``.<name>.deploycc-<pid>-<token>.partial``), so only those of dead processes are removed, and
those of any output in the folder, not only this one's.

:func:`read_manifest` refuses a folder holding a file its manifest does not list, or missing one
it lists, before anything in it is opened: no unlisted native library is ever loaded. The hashes
detect damage (a torn copy, a flipped bit, a hand edit), not tampering: whoever can write the
files can write the manifest too (README, "Artifacts": provenance).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from deploycc.core import outputs
from deploycc.core.cache import cache_home, lock_for, sha256_file
from deploycc.core.errors import UserError
from deploycc.core.outputs import manifest_problem

MANIFEST = "manifest.json"
SCHEMA = "deploycc-artifact/1"

__all__ = [
    "MANIFEST",
    "SCHEMA",
    "artifact_problem",
    "check_output",
    "is_artifact",
    "read_manifest",
    "recover_output",
    "sha256_file",
    "staging_dir",
    "write_manifest",
]


def is_artifact(path: Path) -> bool:
    """A folder deploycc wrote: the artifact schema, and exactly the files its manifest lists,
    each with its sha256 (a schema line alone proves nothing)."""
    try:
        schema = json.loads((Path(path) / MANIFEST).read_text()).get("schema")
    except (OSError, ValueError, AttributeError):
        return False
    return schema == SCHEMA and manifest_problem(Path(path)) is None


def artifact_problem(path: Path) -> str | None:
    """Why the folder at ``path`` is not an intact deploycc artifact (None: it is one)."""
    problem = manifest_problem(Path(path))
    if problem is None and not is_artifact(path):
        return f"{MANIFEST} is not a deploycc artifact's"
    return problem


def check_output(out: str | Path, inputs: list, overwrite: bool = False) -> Path:
    """``out`` as an absolute path when a build may write there, else one line (UserError):
    :func:`deploycc.core.outputs.check_output` with an intact artifact as what is deploycc's."""
    return outputs.check_output(out, inputs, overwrite, ours=artifact_problem, noun="artifact")


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
        tmp = outputs.staging_path(dest)
        tmp.mkdir()
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        outputs.replace_folder(tmp, dest)


def recover_output(dest: Path) -> list[Path]:
    """Under ``dest``'s output lock: put back an artifact that a run killed mid-swap left renamed
    aside, and remove the staging and old folders of killed runs (of any output in the folder).
    Returns what was removed of ``dest``'s own."""
    return outputs.recover_old(Path(dest), is_artifact)


def write_manifest(folder: Path, manifest: dict) -> dict:
    """Add the schema and every file's sha256, then write ``manifest.json`` (sorted keys)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)
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
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise UserError(f"{path}: has no file list")
    _check_listing(folder, files)
    if check_hashes:
        for name, digest in files.items():
            file = folder / name
            if not file.is_file():
                raise UserError(f"{folder}: file {name} listed in the manifest is missing")
            if sha256_file(file) != digest:
                raise UserError(f"{folder}: file {name} does not match its sha256 in the manifest (corrupt or edited)")
    return manifest


def _check_listing(folder: Path, files: dict) -> None:
    """Exactly the listed files, all regular: an unlisted file (a library swapped in and dropped
    from the list), a missing one, a link or a special file is refused before anything is loaded."""
    present = set()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            raise UserError(f"{folder}: {rel} is a link or special file, which an artifact never holds")
        if p.is_file() and rel != MANIFEST:
            present.add(rel)
    unlisted = sorted(present - set(files))
    if unlisted:
        raise UserError(f"{folder}: unlisted file {unlisted[0]} (not in the manifest); refusing to load the artifact")
    for name in files:
        if name not in present:
            raise UserError(f"{folder}: file {name} listed in the manifest is missing")
