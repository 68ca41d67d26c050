"""`media-import demo`: the sample import end to end against the embedded simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from importer.cli.main import demo_exit_code
from importer.state.summary import RunSummary

ROOT = Path(__file__).resolve().parents[2]


def test_demo_sends_every_valid_sample_event_once(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HUBSPOT_ACCESS_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "importer", "demo", "--workdir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "results.csv.summary.json").read_text())
    # The sample files hold 5,000 rows; the invalid ones are reported, every other event is sent once.
    check = subprocess.run(
        [sys.executable, "-m", "importer", "check", str(ROOT / "sample_data" / "generic"),
         "-m", str(ROOT / "mappings" / "generic.yaml"), "--json", "-q"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    report = json.loads(check.stdout)
    assert summary["counts"]["sent"] == report["events_total"]
    assert summary["counts"]["invalid"] == report["invalid"]
    assert summary["counts"]["failed"] == summary["counts"]["not_sent"] == 0
    accepted = f"The simulator accepted {report['events_total']:,} events (0 duplicates)."
    assert accepted in proc.stdout
    assert "Local Media Bridge simulator on http://127.0.0.1:" in proc.stdout


@pytest.mark.parametrize(
    ("counts", "run_code", "demo_code"),
    [
        ({"sent": 9_000, "invalid": 45}, 1, 0),  # the sample's spoiled rows: expected
        ({"sent": 9_045}, 0, 0),
        ({"sent": 9_000, "invalid": 45, "failed": 1}, 1, 1),  # HubSpot (the simulator) refused one
        ({"sent": 9_000, "invalid": 45, "not_sent": 3}, 1, 1),
        ({"sent": 10, "not_sent": 9_035}, 3, 3),  # stopped early
    ],
)
def test_demo_exit_code_follows_its_documented_table(counts: dict[str, int], run_code: int, demo_code: int) -> None:
    assert demo_exit_code(RunSummary(counts=Counter(counts), exit_code=run_code)) == demo_code
