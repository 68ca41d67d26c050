"""``media-import retry RESULTS``: resend the failed / not_sent events of a results file."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from support import Cli

from importer.simulator import Simulator
from importer.state.results import ResultsWriter

from .helpers import Input, accepted, assert_exactly_once, key_of, results_rows, summary_of


def _retry(cli: Cli, sim: Simulator, results_in: Path, results_out: Path, *extra: str) -> tuple[int, str]:
    code, out, _ = cli(
        "retry",
        results_in,
        "--results",
        results_out,
        "--base-url",
        sim.url,
        "--state-dir",
        cli.state,
        "--rate",
        "none",
        "-q",
        *extra,
    )
    return code, out


def test_retry_resends_exactly_the_failed_events_once(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    data = Input(tmp_path / "plays.csv", 120, seed=21)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    cli.media_sync(sim.url, data.path)
    sim.client.reset()
    sim.client.configure(error_rate=0.3, seed=9)
    first = cli.run(sim.url, data.path, extra=("--max-attempts", "1"))
    assert first.code == 1
    failed = [r for r in first.rows if r["status"] == "failed"]
    failed_keys = {key_of(json.loads(r["payload"])) for r in failed}
    assert len(failed_keys) == len(failed) == first.counts["failed"] > 0
    day_one = accepted(sim)
    assert set(day_one) == data.valid - failed_keys

    sim.client.configure(error_rate=0.0)
    requests = sim.client.stats()["requests_total"]
    code, out = _retry(cli, sim, first.results, tmp_path / "retry-1.csv")
    assert code == 0, out
    resent = accepted(sim) - day_one
    assert resent == Counter(dict.fromkeys(failed_keys, 1))
    assert sim.client.stats()["requests_total"] == requests + len(failed_keys)
    assert_exactly_once(accepted(sim), data.valid)
    summary = summary_of(tmp_path / "retry-1.csv")
    assert summary["counts"]["sent"] == len(failed_keys)
    assert summary["exit_code"] == 0
    assert results_rows(tmp_path / "retry-1.csv") == []

    # The same results file again: the journal says they were sent since.
    requests = sim.client.stats()["requests_total"]
    code, _ = _retry(cli, sim, first.results, tmp_path / "retry-2.csv")
    assert code == 0
    assert sim.client.stats()["requests_total"] == requests
    again = summary_of(tmp_path / "retry-2.csv")
    assert again["counts"]["sent"] == 0
    assert again["counts"]["skipped"] == len(failed_keys)

    # And the run itself sends nothing more either.
    rerun = cli.run(sim.url, data.path)
    assert rerun.counts["sent"] == 0
    assert sim.client.stats()["requests_total"] == requests


def test_retry_of_events_failed_after_all_attempts_with_faults_off(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator]
) -> None:
    data = Input(tmp_path / "plays.csv", 15, seed=22)
    sim = make_simulator(burst=0)
    cli.env(HUBSPOT_ACCESS_TOKEN=sim.token)
    cli.media_sync(sim.url, data.path)
    sim.client.reset()
    sim.client.configure(error_rate=1.0)
    first = cli.run(sim.url, data.path, extra=("--max-attempts", "2"))
    assert first.code == 1
    assert first.counts["failed"] == len(data.valid)
    assert {r["attempts"] for r in first.rows} == {"2"}
    assert sim.client.stats()["requests_total"] == 2 * len(data.valid)
    sim.client.configure(error_rate=0.0)
    code, out = _retry(cli, sim, first.results, tmp_path / "retry.csv", "--max-attempts", "2")
    assert code == 0, out
    assert_exactly_once(accepted(sim), data.valid)


def test_retry_with_the_same_file_as_output_is_refused(tmp_path: Path, cli: Cli, simulator: Simulator) -> None:
    results = tmp_path / "results.csv"
    with ResultsWriter(results):
        pass
    cli.env(HUBSPOT_ACCESS_TOKEN=simulator.token)
    code, _ = _retry(cli, simulator, results, results)
    assert code == 2
    assert simulator.client.stats()["requests_total"] == 0


def test_retry_of_a_file_that_is_not_a_results_file_is_an_input_error(
    tmp_path: Path, cli: Cli, simulator: Simulator
) -> None:
    other = tmp_path / "plays.csv"
    other.write_text("session_id,started_at\ns-1,2025-01-01T00:00:00Z\n")
    cli.env(HUBSPOT_ACCESS_TOKEN=simulator.token)
    code, _, err = cli(
        "retry", other, "--results", tmp_path / "retry.csv", "--base-url", simulator.url, "-q", check=False
    )
    assert "internal error" not in err
    assert code == 2
    assert "results file" in err
