"""Dependencies: what the code imports is declared, what is declared is used, and the lock pins all of it."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
DEV = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]
# Declared but never imported by name, on purpose (pyproject.toml says why for each).
INDIRECT = {"sniffio", "tzdata"}
DEV_TOOLS = {"pytest-timeout", "mypy", "ruff", "types-pyyaml", "build", "setuptools", "wheel", "pip-tools"}


def _imported_distributions(*folders: str) -> set[str]:
    """The distributions whose modules the Python files under ``folders`` import."""
    modules: set[str] = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            if "_data" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    modules.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module.split(".")[0])
                elif _is_importorskip(node):
                    modules.add(node.args[0].value.split(".")[0])  # type: ignore[attr-defined]
    local = {"importer", "bench", "tests", "support", "generate", "vendors", "__future__"}
    local |= {d.name for d in (REPO / "tests").iterdir() if d.is_dir()}  # test packages import each other
    third_party = {m for m in modules - local if m not in sys.stdlib_module_names}
    owners = importlib.metadata.packages_distributions()
    return {canonicalize_name(owners[m][0]) for m in third_party}


def _is_importorskip(node: ast.AST) -> bool:
    """``pytest.importorskip("moto.server")``: an import too."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "importorskip"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    )


def _names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


def _pins(lock: str) -> dict[str, str]:
    text = (REPO / "requirements" / lock).read_text(encoding="utf-8")
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==(\S+)", text, re.M)}


def test_what_the_tool_imports_is_a_runtime_dependency() -> None:
    imported = _imported_distributions("importer")
    assert "numpy" in imported
    assert imported - _names(RUNTIME) == set()


def test_every_runtime_dependency_is_imported() -> None:
    assert _names(RUNTIME) - _imported_distributions("importer") == INDIRECT


def test_what_tests_and_bench_import_is_declared() -> None:
    imported = _imported_distributions("tests", "bench", "sample_data")
    assert imported - _names(RUNTIME) - _names(DEV) == set()
    # Nothing in the dev extra that no test, benchmark or make target uses (psutil was one).
    assert _names(DEV) - imported - DEV_TOOLS == set()


def test_runtime_dependencies_have_floors_not_tight_caps() -> None:
    for req in RUNTIME:
        lower = [s for s in req.specifier if s.operator == ">="]
        upper = [s for s in req.specifier if s.operator in ("<", "<=", "==", "~=")]
        assert lower, f"{req} has no floor"
        # A cap only below the next major version 1.0 of a 0.x library, where the API may change.
        assert all(s.operator == "<" and s.version == "1" for s in upper), f"{req} is capped"


def test_the_lock_pins_every_dependency_within_what_pyproject_allows() -> None:
    for lock, wanted in (("runtime.txt", RUNTIME), ("dev.txt", RUNTIME + DEV)):
        pins = _pins(lock)
        for req in wanted:
            name = canonicalize_name(req.name)
            assert name in pins, f"requirements/{lock} does not pin {req.name}: run make lock"
            assert req.specifier.contains(pins[name], prereleases=True), f"{lock}: {name}=={pins[name]} vs {req}"
    runtime, dev = _pins("runtime.txt"), _pins("dev.txt")
    assert {n: v for n, v in dev.items() if n in runtime} == runtime  # one version of each package


def test_the_lock_names_no_index() -> None:
    for lock in ("runtime.txt", "dev.txt"):
        text = (REPO / "requirements" / lock).read_text(encoding="utf-8")
        assert not re.search(r"^\s*-(-index-url|-extra-index-url|-find-links|i|f)\b", text, re.M)
        assert "://" not in text
