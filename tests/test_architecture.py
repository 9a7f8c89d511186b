"""The map holds: imports flow downward between districts, no module imports itself back, and
the engine's top level stays a handful of modules (docs/architecture.md).

The contracts live in pyproject.toml ``[tool.importlinter]`` and are checked by import-linter's
own ``lint-imports``, run the way a developer runs it: in the repository root. ``passes/``,
``targets/`` and ``models/`` are installed as ``deploycc.passes``, ``.targets`` and ``.models``
(setuptools ``package-dir``); the symlinks ``deploycc/passes`` etc. show the source tree under the
same names, which is what import-linter (and grimp under it) reads there. The live-check test
mutates a copy assembled from the ``package-dir`` mapping, as a wheel lays it out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from helpers import REPO

PYPROJECT = REPO / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
HANDFUL = 3


def installed_layout(dest: Path) -> Path:
    """Copy every package's .py files to where ``pip install .`` puts them; returns ``dest``."""
    mapping = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    mapped = {src for pkg, src in mapping.items() if pkg != "deploycc"}
    for package, src in mapping.items():
        root = REPO / src
        for file in root.rglob("*.py"):  # rglob does not enter the deploycc/<name> links
            rel = file.relative_to(root)
            if (package == "deploycc" and rel.parts[0] in mapped) or "__pycache__" in rel.parts:
                continue
            target = dest.joinpath(*package.split("."), rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)
    return dest


def lint_imports(layout: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(layout)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(PYPROJECT), "--no-cache"],
        cwd=layout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_source_tree_shows_the_installed_names():
    """deploycc/<name> is a link to the folder pyproject installs as deploycc.<name>."""
    mapping = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-dir"]
    for package, src in mapping.items():
        if package != "deploycc":
            link = REPO.joinpath(*package.split("."))
            assert link.is_symlink() and link.resolve() == (REPO / src).resolve(), link


def test_import_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, f"import contracts broken (pyproject.toml [tool.importlinter]):\n{result.stdout}"
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_breaks_the_contract(tmp_path):
    """The check is live: core importing the command line is reported, naming both modules."""
    layout = installed_layout(tmp_path)
    shapes = layout / "deploycc" / "core" / "shapes.py"
    shapes.write_text(shapes.read_text() + "\n\ndef _wrong_way():\n    from deploycc.cli import output  # noqa\n")
    result = lint_imports(layout)
    assert result.returncode != 0
    assert "deploycc.core.shapes -> deploycc.cli.output" in result.stdout


def test_no_import_cycles():
    """Zero cycles between any two modules, lazy imports inside functions included."""
    imports = import_graph(REPO)
    assert "deploycc.passes.manager" in imports  # the mapped packages are in the graph
    cycles = strongly_connected(imports)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in cycles)


def test_engine_top_level_is_a_handful_of_modules():
    modules = sorted(p.name for p in (REPO / "deploycc").glob("*.py"))
    assert len(modules) <= HANDFUL, modules


def test_every_district_says_what_it_holds_and_may_import():
    districts = [p for p in (REPO / "deploycc").iterdir() if (p / "__init__.py").is_file()]
    districts += [REPO / name for name in ("passes", "targets", "models")]
    for folder in districts:
        doc = (folder / "__init__.py").read_text().split('"""')[1]
        assert "may import" in doc.lower() or "imports no other district" in doc.lower(), folder


def import_graph(layout: Path) -> dict[str, list[str]]:
    """Module -> the modules it imports directly, read by grimp in a fresh interpreter whose
    ``deploycc`` is the one in ``layout``."""
    script = (
        "import grimp, json; g = grimp.build_graph('deploycc', cache_dir=None); "
        "print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}))"
    )
    env = {**os.environ, "PYTHONPATH": str(layout)}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=layout, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(result.stdout)


def strongly_connected(imports: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's algorithm over the direct imports: every component of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(component)

    for module in sorted(imports):
        if module not in index:
            visit(module)
    return found
