"""The package layout, read from the source with `ast` (nothing is imported):

- the production packages (pyproject's packages.find, less `testbed`) never import the test doubles
  (`testbed`), `tests` or `benchmarks`, nor name a `testbed.` / `tests.` module in a string (`python -m`,
  `importlib`); nothing but `tests` imports `tests`;
- the top-level packages import each other without a cycle;
- no module or package is named like a standard-library module (`io`, `select`, ...);
- the README's folder table names every top-level folder of Python code.
"""

from __future__ import annotations

import ast
import itertools
import re
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_DOUBLES = "testbed"
MODULE_STRING = re.compile(rf"(?:{TEST_DOUBLES}|tests)(?:\.\w+)+")


def top_level_folders(root: Path) -> list[str]:
    """Folders at the root holding Python files of their own (packages, tests, benchmarks)."""
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith((".", "_")) and any(p.glob("*.py")))


def source_files(root: Path) -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) of every .py file under the top-level folders."""
    for top in top_level_folders(root):
        for path in sorted((root / top).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if any(part.startswith(".") or part == "__pycache__" for part in parts):
                continue
            yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported_names(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(absolute module or `module.name`, line) of every import in the file, nested ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            yield name, node.lineno
            yield from ((f"{name}.{alias.name}", node.lineno) for alias in node.names)


def production_packages(root: Path) -> set[str]:
    """pyproject's packages.find include patterns, less the test doubles."""
    config = tomllib.loads((root / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*").rstrip(".") for pattern in include} - {TEST_DOUBLES}


def forbidden_imports(root: Path, production: set[str]) -> list[str]:
    problems = []
    for module, path in source_files(root):
        top = module.split(".")[0]
        where = path.relative_to(root)
        banned = ({TEST_DOUBLES, "tests", "benchmarks"} if top in production
                  else set() if top == "tests" else {"tests"})
        for name, line in imported_names(module, path):
            if name.split(".")[0] in banned:
                problems.append(f"{where}:{line} imports {name}")
        if top in production:
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and MODULE_STRING.fullmatch(node.value):
                    problems.append(f"{where}:{node.lineno} names the module {node.value!r}")
    return problems


def package_cycles(root: Path) -> list[str]:
    """Each cycle of imports between top-level packages, with one import standing for each edge."""
    tops = set(top_level_folders(root))
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for module, path in source_files(root):
        for name, line in imported_names(module, path):
            src, dst = module.split(".")[0], name.split(".")[0]
            if dst in tops and dst != src:
                edges[src].setdefault(dst, f"{path.relative_to(root)}:{line} imports {name}")
    cycles: list[str] = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt == trail[0]:
                hops = [*trail, nxt]
                why = "; ".join(edges[a][b] for a, b in itertools.pairwise(hops))
                cycles.append(f"{' -> '.join(hops)} ({why})")
            elif nxt not in trail and nxt > trail[0]:  # each cycle once, from its smallest package
                visit(nxt, [*trail, nxt])

    for start in sorted(tops):
        visit(start, [start])
    return cycles


def stdlib_shadows(root: Path) -> list[str]:
    names = set(sys.stdlib_module_names)
    found = {f"{top}/" for top in top_level_folders(root) if top in names}
    for _, path in source_files(root):
        rel = path.relative_to(root)
        found |= {f"{'/'.join(rel.parts[:i + 1])}/" for i, part in enumerate(rel.parts[:-1]) if part in names}
        if path.stem in names:
            found.add(str(rel))
    return sorted(found)


# ---- the repository ------------------------------------------------------------------------------------
def test_production_packages_are_read_from_pyproject() -> None:
    production = production_packages(ROOT)
    assert {"reward_fns", "data_preprocess", "evaluation", "recipes", "ckpt_tools"} <= production
    assert TEST_DOUBLES in top_level_folders(ROOT) and TEST_DOUBLES not in production


def test_production_never_imports_test_doubles_tests_or_benchmarks() -> None:
    assert forbidden_imports(ROOT, production_packages(ROOT)) == []


def test_no_import_cycle_between_top_level_packages() -> None:
    assert package_cycles(ROOT) == []


def test_no_module_shadows_a_stdlib_module() -> None:
    assert stdlib_shadows(ROOT) == []


def test_readme_folder_table_names_every_top_level_folder() -> None:
    rows = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `")]
    listed = {name for row in rows for name in re.findall(r"`([\w.]+)/`", row.split("|")[1])}
    assert set(top_level_folders(ROOT)) - listed == set()


# ---- the checks find what they look for -----------------------------------------------------------------
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_checks_catch_planted_problems(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "prod/__init__.py": "",
        "prod/io.py": "import subprocess\nsubprocess.run(['python', '-m', 'testbed.server'])\n",
        "prod/cycle.py": "from other import thing\n",
        "prod/sub/__init__.py": "",
        "prod/sub/lazy.py": "def f():\n    from testbed import server\n",
        "prod/sub/rel.py": "from ..io import x\nfrom . import lazy\n",
        "other/__init__.py": "",
        "other/thing.py": "import prod.sub.rel\n",
        "testbed/__init__.py": "",
        "testbed/server.py": "from tests.helpers import x\n",
        "tests/helpers.py": "from testbed import server\n",
        "benchmarks/b.py": "import tests.helpers\n",
    })
    assert list(imported_names("prod.sub.rel", root / "prod/sub/rel.py")) == [
        ("prod.io", 1), ("prod.io.x", 1), ("prod.sub", 2), ("prod.sub.lazy", 2)]
    assert forbidden_imports(root, {"prod", "other"}) == [
        "benchmarks/b.py:1 imports tests.helpers",
        "prod/io.py:2 names the module 'testbed.server'",
        "prod/sub/lazy.py:2 imports testbed",
        "prod/sub/lazy.py:2 imports testbed.server",
        "testbed/server.py:1 imports tests.helpers",
        "testbed/server.py:1 imports tests.helpers.x"]
    assert package_cycles(root) == [
        "other -> prod -> other (other/thing.py:1 imports prod.sub.rel; prod/cycle.py:1 imports other)",
        "testbed -> tests -> testbed (testbed/server.py:1 imports tests.helpers; tests/helpers.py:1 imports testbed)"]
    assert stdlib_shadows(root) == ["prod/io.py"]
