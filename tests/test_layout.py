"""The layout shows the flow: packages import in one direction (the order the README states), no
module imports itself back through others, and each package's docstring says what it owns."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "importer"
# The README's order: a package imports only from those before it (imports inside functions too).
ORDER = ["errors", "clock", "_data", "source", "mapping", "hubspot", "state", "simulator", "run", "dashboard", "cli"]
ORDER_LINE = " → ".join(f"`{name}`" for name in ORDER)


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> Iterator[str]:
    """The importer modules ``name`` imports, anywhere in its file (``from X import Y`` gives
    ``X.Y`` when that is a module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "importer")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            if base.split(".")[0] != "importer":
                continue
            for alias in node.names:
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else None


def test_every_package_and_top_module_has_a_place_in_the_order() -> None:
    assert {p for p in map(_package, MODULES) if p} == set(ORDER)


def test_packages_import_only_the_packages_before_them() -> None:
    wrong = []
    for name in MODULES:
        mine = _package(name)
        if mine is None:
            continue
        for used in _imports(name):
            theirs = _package(used)
            if theirs is not None and theirs != mine and ORDER.index(theirs) > ORDER.index(mine):
                wrong.append(f"{name} imports {used}")
    assert wrong == []


def test_no_module_imports_itself_back() -> None:
    graph = {name: {m for m in _imports(name) if m in MODULES and m != name} for name in MODULES}
    cycles = []
    for start in graph:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            current = todo.pop()
            if current == start:
                cycles.append(start)
                break
            if current not in seen:
                seen.add(current)
                todo.extend(graph[current])
    assert cycles == []


def test_the_readme_states_the_order() -> None:
    assert ORDER_LINE in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("package", [p for p in ORDER if (ROOT / p).is_dir()])
def test_each_package_says_in_three_lines_what_it_owns(package: str) -> None:
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, package
    first = docstring.split("\n\n")[0]
    assert 1 <= len(first.splitlines()) <= 3, first


def test_the_checks_see_relative_and_lazy_imports() -> None:
    """The parser finds relative and lazy imports (a check that sees nothing would always pass)."""
    used = set(_imports("importer.cli.media"))
    assert "importer.cli.options" in used  # from importer.cli import options (module level)
    assert "importer.run.media" in used  # inside a function
    assert "importer.hubspot.media" in set(_imports("importer.state.media"))  # from the package after it
