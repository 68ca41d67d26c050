"""The scheduler recipes in examples/ are checked as far as this machine allows: the Airflow DAG
compiles and builds its tasks (against a stand-in airflow), the crontab line has a valid schedule,
the systemd units pass ``systemd-analyze verify``, and every command line is a valid invocation."""

from __future__ import annotations

import argparse
import py_compile
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest

from importer.cli.main import build_parser

from .helpers import REPO

EXAMPLES = REPO / "examples"
INSTALLED = "/opt/media-import/.venv/bin/media-import"  # the path the examples tell users to adapt
CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def parse_command(argv: list[str]) -> argparse.Namespace:
    """A media-import command line, parsed by the real parser (argparse exits on a bad one)."""
    assert Path(argv[0]).name == "media-import", argv
    try:
        return build_parser().parse_args(argv[1:])
    except SystemExit as exc:  # pragma: no cover - the message is on stderr
        pytest.fail(f"not a valid media-import command line (exit {exc.code}): {shlex.join(argv)}")


def assert_scheduled_run(args: argparse.Namespace) -> None:
    """What an unattended nightly run needs."""
    assert args.command == "run"
    assert args.state_dir != ".media-import", "a scheduled run names its state directory"
    assert args.results
    assert args.quiet
    assert args.log_file and args.log_format == "json"
    assert not args.dry_run and not args.force


def assert_no_secret(text: str) -> None:
    assert not re.search(r"pat-[a-z0-9]{2,}-[0-9a-f]{4,}", text), "a token is written in an example"
    assert not re.search(r"HUBSPOT_ACCESS_TOKEN=\S", text.replace("HUBSPOT_ACCESS_TOKEN=pat-...", ""))
    assert "--client-secret" not in text and "--refresh-token" not in text


# ---- crontab ----------------------------------------------------------------------------------


def _cron_entries() -> list[tuple[list[str], str]]:
    entries = []
    for line in (EXAMPLES / "crontab").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\s*=", stripped):
            continue
        fields = stripped.split(None, 5)
        assert len(fields) == 6, f"not 5 schedule fields and a command: {line!r}"
        entries.append((fields[:5], fields[5]))
    return entries


def _cron_field_ok(text: str, low: int, high: int) -> bool:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and not (step.isdigit() and int(step) > 0):
            return False
        if base == "*":
            continue
        lo, _, hi = base.partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            return False
        if not low <= int(lo) <= high or (hi and not int(lo) <= int(hi) <= high):
            return False
    return True


def test_crontab_has_one_valid_nightly_line() -> None:
    entries = _cron_entries()
    assert len(entries) == 1
    schedule, command = entries[0]
    for value, (name, low, high) in zip(schedule, CRON_FIELDS, strict=True):
        assert _cron_field_ok(value, low, high), f"bad {name} field {value!r}"
    assert "%" not in command, "cron turns an unescaped % into a newline"
    argv = shlex.split(command)
    assert argv[0] == INSTALLED  # cron's PATH is minimal: a full path
    args = parse_command(argv)
    assert_scheduled_run(args)
    assert args.token_file, "cron has no secret store: the token comes from a file"


def test_crontab_keeps_the_token_out() -> None:
    assert_no_secret((EXAMPLES / "crontab").read_text(encoding="utf-8"))


def test_cron_field_checker_refuses_bad_fields() -> None:
    assert _cron_field_ok("*/15", 0, 59) and _cron_field_ok("1-5", 0, 7) and _cron_field_ok("0,30", 0, 59)
    assert not _cron_field_ok("60", 0, 59) and not _cron_field_ok("*/0", 0, 59) and not _cron_field_ok("x", 0, 23)


# ---- systemd ----------------------------------------------------------------------------------


def _unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys (continuation lines joined, comments dropped)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    logical: list[str] = []
    pending = ""
    for raw in (EXAMPLES / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith(("#", ";"))):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    for line in logical:
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_service_runs_a_valid_command_with_the_token_from_an_environment_file() -> None:
    service = _unit("media-import.service")
    (exec_start,) = service["Service"]["ExecStart"]
    args = parse_command(shlex.split(exec_start))
    assert_scheduled_run(args)
    assert args.token_file is None  # the token comes from the EnvironmentFile
    assert service["Service"]["EnvironmentFile"]
    assert service["Service"]["Type"] == ["oneshot"]
    assert_no_secret((EXAMPLES / "media-import.service").read_text(encoding="utf-8"))


def test_timer_starts_the_service_nightly() -> None:
    timer = _unit("media-import.timer")
    assert timer["Timer"]["OnCalendar"]
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    assert "Unit" not in timer["Timer"]  # so it starts media-import.service, its namesake


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this checkout's media-import.
    installed = Path(sys.executable).with_name("media-import")
    assert installed.exists()
    for name in ("media-import.service", "media-import.timer"):
        text = (EXAMPLES / name).read_text(encoding="utf-8").replace(INSTALLED, str(installed))
        (tmp_path / name).write_text(text, encoding="utf-8")
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "media-import.service"), str(tmp_path / "media-import.timer")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # Unknown keys and bad values are only warnings: there must be none about these units.
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "media-import" in line]
    assert ours == []


# ---- Airflow ----------------------------------------------------------------------------------


def test_airflow_dag_compiles(tmp_path: Path) -> None:
    py_compile.compile(str(EXAMPLES / "airflow_dag.py"), cfile=str(tmp_path / "dag.pyc"), doraise=True)


class _Operator:
    created: ClassVar[list[_Operator]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.downstream: list[_Operator] = []
        _Operator.created.append(self)

    def __rshift__(self, other: _Operator) -> _Operator:
        self.downstream.append(other)
        return other


class _Dag:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def __enter__(self) -> _Dag:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _stand_in_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Just enough of Airflow 3's module layout for the DAG file to run."""
    modules = {
        name: types.ModuleType(name)
        for name in (
            "airflow",
            "airflow.sdk",
            "airflow.providers",
            "airflow.providers.standard",
            "airflow.providers.standard.operators",
            "airflow.providers.standard.operators.bash",
        )
    }
    modules["airflow.sdk"].DAG = _Dag  # type: ignore[attr-defined]
    modules["airflow.providers.standard.operators.bash"].BashOperator = _Operator  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def _dag(monkeypatch: pytest.MonkeyPatch) -> tuple[_Dag, _Operator, _Operator]:
    """Run the DAG file against the stand-in: the DAG and its two tasks."""
    _stand_in_airflow(monkeypatch)
    _Operator.created = []
    namespace = runpy.run_path(str(EXAMPLES / "airflow_dag.py"))
    run, status = _Operator.created
    return namespace["dag"], run, status


def test_airflow_dag_runs_valid_commands_with_the_token_from_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    dag, run, status = _dag(monkeypatch)
    assert dag.kwargs["schedule"] and dag.kwargs["catchup"] is False
    assert run.downstream == [status]

    args = parse_command(shlex.split(run.kwargs["bash_command"]))
    assert_scheduled_run(args)
    assert args.token_file is None
    env = run.kwargs["env"]
    assert re.fullmatch(r"\{\{ conn\.[a-z_]+\.password \}\}", env["HUBSPOT_ACCESS_TOKEN"])
    assert run.kwargs["append_env"] is True
    assert run.kwargs["skip_on_exit_code"] == 4

    status_args = parse_command(shlex.split(status.kwargs["bash_command"]))
    assert status_args.command == "status"
    assert status_args.state_dir == args.state_dir
    assert_no_secret((EXAMPLES / "airflow_dag.py").read_text(encoding="utf-8"))


# ---- all of them --------------------------------------------------------------------------------


def test_every_example_runs_the_same_import(monkeypatch: pytest.MonkeyPatch) -> None:
    (exec_start,) = _unit("media-import.service")["Service"]["ExecStart"]
    ((_, cron),) = _cron_entries()
    _, run, _ = _dag(monkeypatch)
    found = {
        "crontab": parse_command(shlex.split(cron)),
        "systemd": parse_command(shlex.split(exec_start)),
        "airflow": parse_command(shlex.split(run.kwargs["bash_command"])),
    }
    assert len({(a.state_dir, a.mapping, tuple(a.inputs)) for a in found.values()}) == 1
