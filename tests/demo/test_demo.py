"""`media-import demo`: the sample import end to end against the embedded simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
