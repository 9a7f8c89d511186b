"""The output policy of every command that writes: the path is the user's until proven ours.

:func:`check_output` is the one check every ``-o`` (and ``--report``, ``--trace``) goes through
before any work starts. It refuses, on one line (exit 2): a path with a NUL byte or a name over
the file system's limit; the current folder or one of its parents; a path that is, lies inside or
holds an input; a parent that is not a folder; and, unless ``overwrite``, anything already there
that deploycc cannot prove it wrote. A folder is proven ours by :func:`manifest_problem`: a
``manifest.json`` whose every listed file exists with its sha256 and no file beside them (a file
the user added inside an artifact is kept: the rebuild is refused). A file is never proven ours
(it carries no listing), so replacing any existing file takes ``--overwrite``.

Staging paths are ``.<name>.deploycc-<pid>-<token>.partial`` beside the output (``.old`` for what a
swap moved aside): unique per run, and matched by a regular expression on exact names, never by a
glob built from the user's name, so two outputs of one folder never touch each other's staging.
:func:`clean_stale_staging` removes those of processes that no longer run; every write through
this module calls it on the output's folder.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from deploycc.core.cache import sha256_file
from deploycc.core.errors import UserError
from deploycc.core.scratch import pid_alive

MANIFEST = "manifest.json"
_STAGING = re.compile(r"^\.(?P<name>.+)\.deploycc-(?P<pid>\d+)-(?P<token>[0-9a-f]+)\.(?P<kind>partial|old)$")


def os_error_line(exc: OSError) -> str:
    """One line for an OS error the user or the machine caused: the path(s) and the cause."""
    cause = os.strerror(exc.errno).lower() if exc.errno else str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    hint = _HINTS.get(exc.errno, "") if exc.errno is not None else ""
    return f"{' -> '.join(paths) or 'writing a file'}: {cause}{hint}"


def is_nul_error(exc: BaseException) -> bool:
    """Python's refusal of a path holding a NUL byte (a ValueError, before any system call)."""
    return isinstance(exc, ValueError) and "null byte" in str(exc)


def user_path(path, option: str = "-o") -> Path:
    """``path`` as an absolute Path, or one line for a name no file system takes."""
    text = os.fspath(path)
    if "\0" in str(text):
        raise UserError(f"{option} {text!r}: the path holds a NUL byte")
    absolute = Path(os.path.abspath(text))
    limit = _name_max(absolute)
    for part in absolute.parts[1:]:
        # the last name also carries deploycc's staging name (".<name>.deploycc-<pid>-<token>.partial")
        room = limit - (_STAGING_EXTRA if part == absolute.name else 0)
        if len(os.fsencode(part)) > room:
            raise UserError(f"{option} {absolute}: the name {part[:40]}... is longer than {room} bytes")
    return absolute


_STAGING_EXTRA = 40


def _name_max(path: Path) -> int:
    for folder in path.parents:
        try:
            if folder.is_dir():
                return os.pathconf(folder, "PC_NAME_MAX")
        except (OSError, ValueError):
            continue
    return 255


def manifest_problem(folder: Path, manifest_name: str = MANIFEST) -> str | None:
    """None when ``folder`` holds exactly the files its ``manifest_name`` lists (``"files"``:
    relative path -> sha256), each with its sha256 (a folder deploycc wrote); else what differs."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return "not a folder"
    try:
        manifest = json.loads((folder / manifest_name).read_text())
    except FileNotFoundError:
        return f"no {manifest_name}"
    except (OSError, ValueError) as exc:
        return f"{manifest_name} unreadable ({type(exc).__name__})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        return f"{manifest_name} lists no files"
    present = set()
    for p in folder.rglob("*"):
        if p.is_symlink() or not (p.is_file() or p.is_dir()):
            return f"{p.relative_to(folder)} is a link or special file"
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and rel != manifest_name:
            present.add(rel)
    unlisted = sorted(present - set(files))
    if unlisted:
        return f"holds files deploycc did not write ({', '.join(unlisted[:3])})"
    for name, digest in files.items():
        if name not in present:
            return f"file {name} listed in {manifest_name} is missing"
        if sha256_file(folder / name) != digest:
            return f"file {name} does not match its sha256 in {manifest_name}"
    return None


def only_names(names: Iterable[str]) -> Callable[[Path], str | None]:
    """The ``ours`` of a folder deploycc writes files of fixed names into (a report folder): it is
    deploycc's while it holds nothing else, so no file of the user's is ever replaced there."""
    allowed = set(names)

    def problem(folder: Path) -> str | None:
        if not folder.is_dir() or folder.is_symlink():
            return "not a folder"
        others = sorted(n for n in os.listdir(folder) if n not in allowed and not _STAGING.match(n))
        return f"holds files deploycc did not write ({', '.join(others[:3])})" if others else None

    return problem


def check_output(
    out,
    inputs: Iterable = (),
    overwrite: bool = False,
    *,
    option: str = "-o",
    ours: Callable[[Path], str | None] | None = manifest_problem,
    folder: bool | None = None,
    noun: str = "output",
) -> Path:
    """``out`` as an absolute path when a command may write there, else one line (UserError).

    ``ours(path)`` says why an existing path is not deploycc's (None: it is); None means nothing
    there is ever ours (a plain file: replacing it takes ``overwrite``). ``folder`` True/False:
    the output must be a folder / a file."""
    out = user_path(out, option)
    real = out.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise UserError(f"{option} {out}: is the current folder or one of its parents; name a new one")
    for item in inputs:
        if item is None or not os.path.lexists(item):
            continue
        source = Path(item).resolve()
        if real == source or source in real.parents or out == Path(os.path.abspath(item)):
            raise UserError(f"{option} {out}: is or lies inside the input {item}; choose another output path")
        if real in source.parents:
            raise UserError(f"{option} {out}: holds the input {item}, which replacing it would delete")
    for parent in out.parents:
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise UserError(f"{option} {out}: {parent} is not a folder")
            break
    if os.path.lexists(out):
        _check_existing(out, overwrite, option, ours, folder, noun)
    return out


def _check_existing(out: Path, overwrite: bool, option: str, ours, folder: bool | None, noun: str) -> None:
    is_link, is_dir = out.is_symlink(), out.is_dir() and not out.is_symlink()
    if not is_link and not is_dir and not out.is_file():
        raise UserError(f"{option} {out}: is a special file (device, pipe or socket); name a new path")
    if folder is True and not is_dir and not is_link:
        raise UserError(f"{option} {out}: exists and is not a folder")
    if folder is False and is_dir:
        raise UserError(f"{option} {out}: is a folder; name a file")
    if overwrite:
        return
    why = "a link" if is_link else (ours(out) if ours else "nothing in it proves deploycc wrote it")
    if why is None:
        return
    what = "folder" if is_dir else "file"
    raise UserError(
        f"{option} {out}: an existing {what} that is not a deploycc {noun} ({why}); "
        "choose another path or pass --overwrite to replace it"
    )


def staging_path(dest: Path, kind: str = "partial") -> Path:
    """A name beside ``dest`` that is this run's alone."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.deploycc-{os.getpid()}-{secrets.token_hex(4)}.{kind}")


def staging_entries(parent: Path, name: str | None = None) -> list[tuple[Path, re.Match]]:
    """The staging paths in ``parent`` (of the output ``name`` only, when given), matched exactly."""
    try:
        names = sorted(os.listdir(parent))
    except OSError:
        return []
    found = []
    for entry in names:
        match = _STAGING.match(entry)
        if match and (name is None or match["name"] == name):
            found.append((Path(parent) / entry, match))
    return found


def remove_path(path: Path) -> None:
    """Remove a file, a link (the link, never what it points to) or a folder."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def clean_stale_staging(parent: Path) -> list[Path]:
    """Remove the staging paths in ``parent`` whose process is gone (an ``.old`` only where its
    output is back in place; :func:`recover_old` puts one back under the output's lock)."""
    removed = []
    for path, match in staging_entries(parent):
        if pid_alive(int(match["pid"])):
            continue
        if match["kind"] == "old" and not os.path.lexists(Path(parent) / match["name"]):
            continue
        remove_path(path)
        removed.append(path)
    return removed


def recover_old(dest: Path, sound: Callable[[Path], bool]) -> list[Path]:
    """Under ``dest``'s lock: put back what a run killed mid-swap left renamed aside (when ``dest``
    is missing and it is ``sound``), then remove every staging path of ``dest`` of a dead run."""
    dest = Path(dest)
    entries = [(p, m) for p, m in staging_entries(dest.parent, dest.name) if not pid_alive(int(m["pid"]))]
    if not os.path.lexists(dest):
        olds = [p for p, m in entries if m["kind"] == "old" and sound(p)]
        if olds:
            olds[-1].rename(dest)
            entries = [(p, m) for p, m in entries if p != olds[-1]]
    for path, _ in entries:
        remove_path(path)
    clean_stale_staging(dest.parent)
    return [p for p, _ in entries]


def replace_folder(tmp: Path, dest: Path) -> None:
    """Put the complete folder ``tmp`` at ``dest``, removing what was there. One
    ``renameat2(RENAME_EXCHANGE)`` where the kernel has it (never a moment without a complete
    folder at ``dest``); elsewhere two renames, the old one moved aside as this run's ``.old``
    (put back by :func:`recover_old` if the run is killed in between)."""
    if os.path.lexists(dest) and _exchange(tmp, dest):
        old = tmp  # holds what was at dest
    else:
        old = None
        if os.path.lexists(dest):
            old = staging_path(dest, "old")
            dest.rename(old)
        tmp.rename(dest)
    if old is not None:
        remove_path(old)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where the
    C library or the file system has no such call, so the caller falls back to two renames."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextmanager
def staged_file(dest: Path):
    """Yield a staging path beside ``dest``; on success it replaces ``dest`` in one rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_staging(dest.parent)
    tmp = staging_path(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    finally:
        remove_path(tmp) if os.path.lexists(tmp) else None


def write_output_bytes(dest: Path, data: bytes) -> None:
    """Write ``data`` to ``dest`` through a staging file (flushed to disk, then renamed)."""
    with staged_file(dest) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def is_user_os_error(exc: BaseException) -> bool:
    """An OS error the user or the machine caused (permissions, a full disk, a bad name), not a
    bug: exit 2 with :func:`os_error_line`."""
    return isinstance(exc, OSError) and exc.errno in _USER_ERRNOS


_USER_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENAMETOOLONG,
    errno.EILSEQ,
    errno.ELOOP,
    errno.EMLINK,
    errno.EFBIG,
}
_HINTS = {
    errno.EROFS: " (choose a writable output, or DEPLOYCC_CACHE for the cache)",
    errno.EACCES: " (choose a path you may write, or DEPLOYCC_CACHE for the cache)",
    errno.ENOSPC: " (free some space or choose another output or DEPLOYCC_CACHE)",
    errno.EDQUOT: " (free some space or choose another output or DEPLOYCC_CACHE)",
}
