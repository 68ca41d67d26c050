"""What a newcomer reads in reports and results: values as the file holds them, each problem once."""

from __future__ import annotations

from pathlib import Path

from support import Cli

from importer.state.results import read_results

from .helpers import REPO


def test_the_report_shows_a_bad_value_as_the_file_holds_it(cli: Cli) -> None:
    code, out, _ = cli("check", REPO / "sample_data" / "generic", "-m", "generic", "-q")
    assert code == 1
    assert "value='hologram'" in out
    assert "HOLOGRAM" not in out


def test_a_lookup_miss_is_one_message_in_the_error_cell(cli: Cli, tmp_path: Path) -> None:
    mux = REPO / "sample_data" / "mux"
    results = tmp_path / "invalid.csv"
    code, _, _ = cli(
        "check", mux / "views-2025-03.csv", "-m", "mux-data-views", "--lookup", f"contacts={mux / 'contacts.csv'}",
        "--results", results, "-q",
    )  # fmt: skip
    assert code == 1
    errors = set(read_results(results).column("error").to_pylist())
    assert errors == {"contactId: not found in lookup 'contacts'"}
