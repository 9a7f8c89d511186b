"""The verified cache layer every deploycc cache reads and writes through.

A cache entry is a *sealed* JSON file: ``{"schema", "key", "sha256", "payload"}``, where
``sha256`` is the hash of the payload's canonical JSON. Reading an entry checks, in order: that
it parses, that it is a sealed entry of this cache's schema and key, that the payload matches its
hash (a torn write, a flipped bit or a hand edit), and the cache's own range check on the values
(a latency is positive and finite, a range has min <= max ...). A bad entry is reported on one
line on stderr, removed, and read as absent, so the caller rebuilds it. Writes are atomic (a
temporary file beside the entry, flushed, then renamed), and each entry has a file lock
(``filelock``) so two processes on one cache wait for each other instead of both building it.

Folder entries (a cached artifact, a generated data set) are verified against a listing of their
files' sha256 (:func:`folder_problem`): a missing, changed or *unlisted* file makes the entry bad.

A cache holds data, never paths: every entry must be a regular file or a real folder that
deploycc wrote. A symbolic link or a special file (pipe, device, socket) where an entry should be,
or inside a folder entry, makes it bad; it is removed as a link (:func:`remove_entry` never
follows one), and never read through or deleted into.

Keys should include :func:`environment` (deploycc's own source digest, the CPU model and
architecture), so a cache shared between checkouts or machines never serves an entry made by
another pipeline or measured on another CPU.

Hand-written (about 150 lines) because no maintained library offers verified, sealed entries
with a per-entry lock; the locking itself is ``filelock``'s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import platform
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from filelock import FileLock

CACHE_ENV = "DEPLOYCC_CACHE"
LOCK_TIMEOUT_S = 6 * 3600.0  # a lock holder builds or times one entry; hours would mean it hung

# deploycc's own files that cannot change what a build produces: the command line, the CI runner,
# the fleet and the LUT tools. Editing them does not invalidate a cache.
_NOT_BUILD = ("cli/", "ci/", "fleet/", "lut/")


def cache_home() -> Path:
    """``$DEPLOYCC_CACHE``, else ``~/.cache/deploycc``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "deploycc")


@lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 over deploycc's own .py/.toml/.json sources that take part in a build (engine,
    passes, targets, models; see ``_NOT_BUILD`` for what is left out). The folders are found
    with ``find_spec``, which imports no district (core imports nothing above it)."""
    digest = hashlib.sha256()
    for package in ("deploycc", "deploycc.passes", "deploycc.targets", "deploycc.models"):
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, f"{package} is deploycc's own package"
        root = Path(spec.origin).resolve().parent
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            skip = package == "deploycc" and rel.startswith(_NOT_BUILD)
            if path.suffix in (".py", ".toml", ".json") and "__pycache__" not in path.parts and not skip:
                digest.update(f"{package}/{rel}".encode())
                digest.update(sha256_file(path).encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """What every cache key includes: deploycc's source digest and the CPU that computed it."""
    return {"deploycc_source": source_digest(), "cpu": cpu_model(), "machine": platform.machine()}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def payload_sha256(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def not_data(path: Path) -> str | None:
    """Why ``path`` (which exists) cannot be a cache entry: a link or a special file; else None."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return "a symbolic link, which a cache never holds"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "a special file (pipe, device or socket), which a cache never holds"
    return None


def remove_entry(path: Path) -> None:
    """Remove a cache entry: a link or file is unlinked (what a link points to is never touched),
    a real folder removed with its contents. Errors other than absence are raised."""
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def report_bad(kind: str, where: Path, problem: str) -> None:
    """The one line a bad entry costs: what, where, why, and that it is rebuilt."""
    print(f"deploycc: {kind} cache entry {where} is corrupt ({problem}); removed, rebuilding", file=sys.stderr)


def seal(kind: str, key: str, payload) -> str:
    return (
        json.dumps(
            {"schema": f"deploycc-cache/{kind}/1", "key": key, "sha256": payload_sha256(payload), "payload": payload},
            sort_keys=True,
            indent=1,
        )
        + "\n"
    )


def unseal(text: str, kind: str, key: str, check: Callable | None = None) -> tuple[Any, str | None]:
    """(payload, None) for a sound sealed entry, else (None, what is wrong with it)."""
    try:
        entry = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        return None, f"not JSON: {str(exc)[:80]}"
    if not isinstance(entry, dict) or not {"schema", "key", "sha256", "payload"} <= set(entry):
        return None, "not a sealed deploycc cache entry"
    if entry["schema"] != f"deploycc-cache/{kind}/1" or entry["key"] != key:
        return None, f"schema {entry['schema']!r} / key {str(entry['key'])[:16]!r} is not this entry's"
    if payload_sha256(entry["payload"]) != entry["sha256"]:
        return None, "content does not match its sha256"
    problem = check(entry["payload"]) if check else None
    return (None, problem) if problem else (entry["payload"], None)


def lock_for(path: Path, timeout: float = LOCK_TIMEOUT_S) -> FileLock:
    """The file lock of the entry (or output) at ``path``: ``<path>.lock`` beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.with_name(path.name + ".lock")), timeout=timeout)


class JsonCache:
    """Sealed JSON entries ``<root>/<key>.json`` of one kind, each checked by ``check(payload)``
    (returns what is wrong, or None) when read."""

    def __init__(self, root: Path, kind: str, check: Callable | None = None):
        self.root, self.kind, self.check = Path(root), kind, check

    def path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def lock(self, key: str) -> FileLock:
        return lock_for(self.path(key))

    def get(self, key: str, check: Callable | None = None):
        """The verified payload, or None (absent; or bad: then reported and removed)."""
        path = self.path(key)
        try:
            problem = not_data(path)
        except FileNotFoundError:
            return None
        payload = None
        if problem is None:
            payload, problem = unseal(_read_text(path), self.kind, key, check or self.check)
        if problem:
            report_bad(self.kind, path, problem)
            remove_entry(path)
        return payload

    def put(self, key: str, payload) -> None:
        atomic_write_text(self.path(key), seal(self.kind, key, payload))


def _read_text(path: Path) -> str:
    """The text of a regular file, never through a link (``O_NOFOLLOW``); an unreadable one reads
    as a NUL line, which :func:`unseal` reports as not JSON."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            return fh.read().decode("utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        return f"\0{exc}"


def folder_listing(folder: Path, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under ``folder`` (relative POSIX path -> sha256), minus the names in ``ignore``."""
    folder = Path(folder)
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).as_posix() not in ignore
    }


def folder_problem(folder: Path, listing: dict[str, str], ignore: tuple[str, ...] = ()) -> str | None:
    """What differs between ``folder`` and ``listing``: a missing, changed or unlisted file."""
    folder = Path(folder)
    if folder.is_symlink() or not isinstance(listing, dict) or not folder.is_dir():
        return f"{folder.name}: no such folder, a link, or no listing"
    for p in folder.rglob("*"):
        why = not_data(p)
        if why:
            return f"{p.relative_to(folder).as_posix()} is {why}"
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - set(ignore)
    unlisted = sorted(present - set(listing))
    if unlisted:
        return f"unlisted file {unlisted[0]}" + (f" (and {len(unlisted) - 1} more)" if len(unlisted) > 1 else "")
    for name, digest in listing.items():
        if name not in present:
            return f"file {name} is missing"
        if sha256_file(folder / name) != digest:
            return f"file {name} does not match its sha256"
    return None


def finite(value, positive: bool = False) -> bool:
    """True for a real number that is finite (and > 0 with ``positive``); bool is not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) and (value > 0 or not positive)


class FolderCache:
    """Folder entries ``<root>/<key>/`` (a generated data set ...), each sealed by a listing of its
    files' sha256 in ``<root>/<key>.json``: served only while every file matches and none was added."""

    def __init__(self, root: Path, kind: str):
        self.root, self.kind = Path(root), kind
        self.listings = JsonCache(self.root, kind)

    def get_or_make(self, key: str, make: Callable[[Path], None]) -> tuple[Path, bool]:
        """(folder, was it served from the cache); ``make(folder)`` writes a missing or bad entry."""
        folder = self.root / key
        with self.listings.lock(key):
            problem = not_data(folder) if os.path.lexists(folder) else None
            if problem:
                report_bad(self.kind, folder, problem)
                remove_entry(folder)
            if self.listings.get(key, lambda listing: folder_problem(folder, listing)) is not None:
                return folder, True
            remove_entry(folder)
            try:
                make(folder)
            except BaseException:
                remove_entry(folder)
                raise
            self.listings.put(key, folder_listing(folder))
        return folder, False
