"""Installed the way people install CLIs: the sdist and wheel are built, the wheel goes into a fresh
virtualenv, and the tool works from an empty directory (demo, a preset by name, the references).

Offline: the build uses the setuptools of this environment (no build isolation), and the fresh
virtualenv reaches the dependencies already installed here through a path file, not an index.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [
    "importer/_data/README.md",
    "importer/_data/mappings/generic.yaml",
    "importer/_data/mappings/mux-data-views.yaml",
    "importer/_data/sample_data/generic/plays-2025-h1.csv",
    "importer/_data/sample_data/generic/plays-2025-h2.parquet",
    "importer/_data/sample_data/mux/contacts.csv",
]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel built from the unpacked sdist: both must hold the data.
    proc = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)], cwd=out)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("venv")
    proc = _run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root)
    assert proc.returncode == 0, proc.stderr
    python = root / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    # This environment's pip installs into the new one; no index is asked for anything.
    proc = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=root,
    )
    assert proc.returncode == 0, proc.stderr
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=root)
    # The dependencies: those of this environment, appended after the new one's own packages.
    Path(site.stdout.strip(), "deps-from-test.pth").write_text(
        "\n".join(dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])) + "\n"
    )
    yield root


def _tool(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "PYTHON"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return _run([str(venv / "bin" / "media-import"), *args], cwd=cwd, env=env)


def test_the_sdist_and_the_wheel_hold_the_presets_sample_data_and_readme(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    with tarfile.open(sdist) as tar:
        in_sdist = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    for path in SHIPPED:
        assert path in in_wheel
        assert path in in_sdist
    presets = {Path(p).name for p in in_wheel if p.startswith("importer/_data/mappings/")}
    assert presets == {p.name for p in (REPO / "mappings").glob("*.yaml")}
    # Real files, not links back into a repository the user does not have.
    with tarfile.open(sdist) as tar:
        assert not [m.name for m in tar.getmembers() if m.issym() or m.islnk()]


def test_the_installed_tool_runs_the_demo_from_an_empty_directory(venv: Path, tmp_path: Path) -> None:
    where = _run([str(venv / "bin" / "python"), "-c", "import importer; print(importer.__file__)"], cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr
    proc = _tool(venv, tmp_path, "demo", "--quiet")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert (tmp_path / ".media-import" / "demo" / "results.csv").exists()
    assert "The simulator accepted" in proc.stdout


def test_a_preset_by_name_checks_from_an_empty_directory(venv: Path, tmp_path: Path) -> None:
    views, contacts = REPO / "sample_data" / "mux" / "views-2025-03.csv", REPO / "sample_data" / "mux" / "contacts.csv"
    proc = _tool(venv, tmp_path, "check", str(views), "-m", "mux-data-views", "--lookup", f"contacts={contacts}", "-q")
    # The sample holds one viewer missing from its lookup file, on purpose: exit code 1, no error.
    assert (proc.returncode, proc.stderr) == (1, "")
    assert "contactId: not found in lookup 'contacts'" in proc.stdout


def test_the_references_travel_with_the_tool(venv: Path, tmp_path: Path) -> None:
    listing = _tool(venv, tmp_path, "mappings")
    assert listing.returncode == 0, listing.stderr
    assert "mux-data-views  " in listing.stdout
    assert "Mux Data daily view export (CSV)" in listing.stdout
    reference = _tool(venv, tmp_path, "help", "mapping")
    assert reference.returncode == 0, reference.stderr
    assert reference.stdout.startswith("## Mapping reference\n")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert reference.stdout.strip() in readme
    shown = _tool(venv, tmp_path, "mappings", "--show", "generic")
    assert shown.stdout == (REPO / "mappings" / "generic.yaml").read_text(encoding="utf-8")
