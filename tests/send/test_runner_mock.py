"""The runner with a scripted transport (``RunOptions(transport=...)``): outcomes reach the results
file, the journal and the summary."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from importer.hubspot.sender import RetryPolicy

from .helpers import Input, Script, echo, journal_statuses, key_of, results_rows, run_scripted

FAST = RetryPolicy(max_attempts=3, max_seconds=30.0, base_delay=0.001, max_delay=0.005)


def _run(tmp_path: Path, data: Input, script: Script, name: str = "results.csv") -> tuple[int, dict, list]:  # type: ignore[type-arg]
    results = tmp_path / name
    summary = run_scripted(tmp_path, data, script, FAST, results)
    return summary.exit_code, summary.to_dict(), results_rows(results)


def test_400s_become_failed_rows_with_hubspot_details_and_are_not_retried(tmp_path: Path) -> None:
    data = Input(tmp_path / "plays.csv", 40, seed=41)
    refused = {k for k in data.valid if k[0].endswith("7")}
    assert refused

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if key_of(body) in refused:
            return httpx.Response(
                400,
                json={
                    "status": "error",
                    "message": f"Media {body.get('externalId') or body.get('mediaBridgeId')} not found",
                    "category": "VALIDATION_ERROR",
                    "correlationId": "11111111-2222-4333-8444-555555555555",
                },
            )
        return echo(request)

    script = Script(then=answer)
    code, summary, rows = _run(tmp_path, data, script)
    assert code == 1
    assert summary["counts"] == {
        "sent": len(data.valid) - len(refused),
        "skipped": 0,
        "invalid": 0,
        "failed": len(refused),
        "not_sent": 0,
        "possibly_sent": 0,
    }
    assert len(script.requests) == len(data.valid)  # a 400 is not retried
    assert {key_of(json.loads(r["payload"])) for r in rows} == refused
    for r in rows:
        assert (r["status"], r["http_status"], r["attempts"]) == ("failed", "400", "1")
        assert "not found" in r["error"]
        assert "VALIDATION_ERROR" in r["error"]
        assert "11111111-2222-4333-8444-555555555555" in r["error"]
    assert journal_statuses(tmp_path / "state") == {"sent": len(data.valid) - len(refused), "failed": len(refused)}


def test_transient_failures_are_redriven_by_the_next_run(tmp_path: Path) -> None:
    data = Input(tmp_path / "plays.csv", 20, seed=42)
    script = Script(then=lambda r: httpx.Response(503, json={"message": "down"}))
    code, summary, rows = _run(tmp_path, data, script)
    assert code == 1
    assert summary["counts"]["failed"] == len(data.valid)
    assert summary["retries"] == 2 * len(data.valid)
    assert {r["attempts"] for r in rows} == {"3"}
    healthy = Script()
    code2, summary2, _ = _run(tmp_path, data, healthy, "results-2.csv")
    assert code2 == 0
    assert sorted(key_of(json.loads(r.content)) for r in healthy.requests) == sorted(data.valid)
    assert summary2["counts"]["sent"] == len(data.valid)
