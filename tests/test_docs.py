"""No dead references: every Markdown file the repository cites exists in it, with the heading cited.

Scanned: the docstrings and comments of every Python file, every TOML, YAML and Makefile (whole
text: comments and values), and every Markdown file. A reference is a path ending in ``.md``
(``docs/passes.md``, ``models/zoo/trained/street_ref.md``, or a bare name such as
``README.md``), resolved against the citing file's folder, then the repository root, and it must
land on a file inside the repository. A reference followed by a quoted heading
(``docs/passes.md, "What the manager checks"``) must name a heading of that file; one followed by
``§N`` or ``section N`` must name a heading numbered N; a Markdown link's anchor
(``docs/passes.md#the-strict-oracle``, or ``#anchor`` within one file) must be a heading's
anchor. The repository is found from this file, and only files are read (nothing is imported),
so it runs without installing deploycc.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "__pycache__",
    ".hypothesis",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "node_modules",
    ".deploycc-cache",
}
SKIP_TOP = {"build", "dist"}  # outputs at the root; deploycc/pipeline/ and tests/pipeline/ are source
TEXT_SUFFIXES = {".toml", ".yml", ".yaml", ".cfg"}
# Files deploycc *writes* when it runs (docstrings name them as outputs): not repository files.
WRITTEN = {"report.md"}

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
REF = re.compile(r"(?<![\w./-])(?P<path>[\w./-]*[\w-]\.md)(?![\w])(?P<anchor>#[\w-]+)?")
HEADING_AFTER = re.compile(r"\)?\s*,\s*(?:\"(?P<dq>[^\"]{1,200})\"|“(?P<cq>[^”]{1,200})”|'(?P<sq>[^'\n]{1,200})')")
SECTION_AFTER = re.compile(r"\)?\s*,?\s*(?:§|section\s+)\s*(?P<num>\d+(?:\.\d+)*)")
LOCAL_ANCHOR = re.compile(r"\]\((?P<anchor>#[\w-]+)\)")


# ---------------------------------------------------------------- what a file says


def repository_files() -> list[Path]:
    out = []
    for folder, dirs, files in os.walk(REPO):
        top = Path(folder) == REPO
        dirs[:] = sorted(
            d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info") and not (top and d in SKIP_TOP)
        )
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix in TEXT_SUFFIXES | {".py", ".md"} or name == "Makefile":
                out.append(path)
    return out


def passages(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the parts of ``path`` whose references count."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix == ".py":
        return python_passages(text)
    if path.suffix == ".md":
        return [(1, text)]
    return [(1, re.sub(r"\n[ \t]*#+[ \t]?", "\n", text))]  # a comment continued on the next line


def python_passages(source: str) -> list[tuple[int, str]]:
    """Docstrings (module, classes, functions) and comment blocks (consecutive comment lines)."""
    out = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
    block: list[str] = []
    start = last = 0
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type != tokenize.COMMENT:
            continue
        line = tok.start[0]
        if block and line != last + 1:
            out.append((start, "\n".join(block)))
            block = []
        if not block:
            start = line
        block.append(tok.string.lstrip("#").strip())
        last = line
    if block:
        out.append((start, "\n".join(block)))
    return out


# ---------------------------------------------------------------- what a Markdown file offers


def headings(md: Path) -> list[str]:
    """The headings of ``md`` (outside fenced code), whitespace- and backtick-normalized."""
    found, fenced = [], False
    for line in md.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        m = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m and not fenced:
            found.append(normal(m.group(1)))
    return found


def normal(text: str) -> str:
    return " ".join(text.replace("`", "").split())


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def resolve(ref: str, source: Path) -> Path | None:
    """The repository file ``ref`` names from ``source`` (its folder first, then the root)."""
    for base in (source.parent, REPO):
        candidate = (base / ref).resolve()
        if candidate.is_file() and candidate.is_relative_to(REPO):
            return candidate
    return None


# ---------------------------------------------------------------- the check


def problems_in(text: str, source: Path, line: int = 1) -> list[str]:
    """Every dead reference in ``text``, a passage of ``source`` starting at ``line``."""
    name = source.relative_to(REPO) if source.is_relative_to(REPO) else source
    text = URL.sub(" ", text)
    out = []
    for m in REF.finditer(text):
        where = f"{name}:{line + text.count(chr(10), 0, m.start())}"
        ref = m.group("path")
        target = resolve(ref, source)
        if target is None:
            if Path(ref).name in WRITTEN and "/" not in ref:
                continue
            out.append(f"{where}: {ref!r} is not a file in the repository")
            continue
        rel = target.relative_to(REPO)
        titles = headings(target)
        rest = text[m.end() :]
        cited = HEADING_AFTER.match(rest)
        if cited:
            heading = normal(cited.group("dq") or cited.group("cq") or cited.group("sq"))
            if heading not in titles:
                out.append(f"{where}: {rel} has no heading {heading!r} (headings: {titles})")
        section = SECTION_AFTER.match(rest)
        if section:
            num = section.group("num")
            if not any(re.match(rf"{re.escape(num)}(\.|\s)", t) for t in titles):
                out.append(f"{where}: {rel} has no heading numbered {num} (cite a heading by its title)")
        if m.group("anchor") and m.group("anchor")[1:] not in {anchor(t) for t in titles}:
            out.append(f"{where}: {rel} has no heading with anchor {m.group('anchor')!r}")
    if source.suffix == ".md":
        own = {anchor(t) for t in headings(source)} if source.is_file() else set()
        for m in LOCAL_ANCHOR.finditer(text):
            where = f"{name}:{line + text.count(chr(10), 0, m.start())}"
            if m.group("anchor")[1:] not in own:
                out.append(f"{where}: no heading with anchor {m.group('anchor')!r} in this file")
    return out


def test_every_markdown_reference_exists():
    problems = []
    files = repository_files()
    for expected in ("README.md", "docs/passes.md", "deploycc/pipeline/pipeline.py", "targets/cpu.toml"):
        assert REPO / expected in files, f"the scan misses {expected}"
    for path in files:
        for line, text in passages(path):
            problems += problems_in(text, path, line)
    assert not problems, "dead references:\n" + "\n".join(problems)


def test_the_docs_exist():
    for name in ("architecture", "passes", "targets", "latency"):
        assert (REPO / "docs" / f"{name}.md").is_file(), name
    assert "How to add a pass" in headings(REPO / "docs" / "passes.md")


SOURCE = REPO / "passes" / "example.py"  # a citing file for the checker's own tests (never read)


@pytest.mark.parametrize(
    "text",
    [
        "Math (passes.md §1.1; implemented in _bn_math)",  # a file outside the repository
        "see docs/missing.md",
        "see /work/shared/reference/latency.md",  # absolute: outside the repository
        'See docs/passes.md, "What the manager checks too"',  # no such heading
        "docs/passes.md, 'No such heading'",
        "docs/latency.md §4",  # the docs number no headings
        "[the oracle](../docs/passes.md#no-such-anchor)",
    ],
)
def test_the_checker_catches_a_dead_reference(text):
    assert problems_in(text, SOURCE)


@pytest.mark.parametrize(
    "text",
    [
        'See docs/passes.md, "What the manager checks".',
        'docs/passes.md, "How to add a\n   pass"',  # a heading wrapped in a docstring
        "docs/targets.md, 'Legality rules'",
        "[the oracle](../docs/passes.md#the-strict-oracle), models/zoo/trained/street_ref.md",
        "writes report.md beside the plot",
        "https://example.com/some/README.md",
    ],
)
def test_the_checker_accepts_a_live_reference(text):
    assert problems_in(text, SOURCE) == []


def test_comment_blocks_and_docstrings_are_read():
    source = '"""Module (docs/a.md)."""\n\n# first line\n# docs/b.md, "x"\nx = "docs/c.md"\n'
    texts = [t for _, t in python_passages(source)]
    assert any("docs/a.md" in t for t in texts) and any('first line\ndocs/b.md, "x"' in t for t in texts)
    assert not any("docs/c.md" in t for t in texts)  # a plain string literal is not a citation
