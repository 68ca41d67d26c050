"""mappings/op3-downloads.yaml on sample_data/op3: AUDIO, STARTED only, contacts by audienceId."""

from __future__ import annotations

import csv
from collections import Counter
from typing import Any

import pytest

from .helpers import NOT_FOUND, SAMPLES, Checked, check_preset, ms, read_lookup, stable_id

DOWNLOADS = SAMPLES / "op3" / "downloads-2025-03.tsv"
CONTACTS = SAMPLES / "op3" / "contacts.csv"


@pytest.fixture(scope="module")
def op3(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    return check_preset("op3-downloads", [DOWNLOADS], CONTACTS, tmp_path_factory.mktemp("op3") / "results.parquet")


@pytest.fixture(scope="module")
def raw() -> list[dict[str, str]]:
    # OP3 never quotes: a quote inside a value is an ordinary character.
    with DOWNLOADS.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def session_id(row: dict[str, str]) -> str:
    return stable_id(row["time"], row["url"], row["audienceId"])


def payload(row: dict[str, str], at: str, contact: int) -> dict[str, Any]:
    return {
        "mediaType": "AUDIO",
        "sessionId": session_id(row),
        "state": "STARTED",
        "occurredTimestamp": ms(at),
        "contactId": contact,
        "externalId": row["episodeId"],
        "mediaUrl": row["url"],
    }


def test_the_sample_has_the_export_quirks(raw: list[dict[str, str]]) -> None:
    assert raw[0]["time"] == "2025-03-01T06:00:00.042Z"
    assert raw[4]["agentName"] == '"Breaker/2.3 CFNetwork'
    assert len(raw) == 250


def test_download_is_an_audio_start(op3: Checked, raw: list[dict[str, str]]) -> None:
    first = raw[0]
    assert op3.session(session_id(first)) == {
        "STARTED": payload(first, "2025-03-01T06:00:00.042Z", 50000),
    }


def test_stray_quote_in_a_user_agent_is_an_ordinary_character(op3: Checked, raw: list[dict[str, str]]) -> None:
    row = raw[4]
    assert op3.session(session_id(row)) == {
        "STARTED": payload(row, "2025-03-01T06:00:04.042Z", 50003),
    }
    assert op3.report.rows == 250  # nothing after it was swallowed


def test_bot_download_is_skipped(op3: Checked, raw: list[dict[str, str]]) -> None:
    bot = raw[3]
    assert bot["botType"] == "bot"
    assert not op3.mentions(session_id(bot))


def test_audience_missing_from_the_lookup_is_invalid(op3: Checked, raw: list[dict[str, str]]) -> None:
    stranger = raw[2]["audienceId"]
    [record] = op3.invalid_for(stranger)
    assert (record["row_number"], record["state"], record["field"]) == (3, "STARTED", "contactId")
    assert NOT_FOUND in record["error"]


def test_totals_match_a_recount_of_the_file(op3: Checked, raw: list[dict[str, str]]) -> None:
    known = read_lookup(CONTACTS, "audienceId")
    bots = sum(1 for r in raw if r["botType"])
    humans = [r for r in raw if not r["botType"]]
    invalid = sum(1 for r in humans if r["audienceId"] not in known)
    report = op3.report.to_dict()
    assert report["events"] == {"STARTED": len(humans) - invalid}
    assert report["skipped"] == {"skip[0] bot (botType set)": bots}
    assert report["invalid"] == invalid == 1
    assert Counter(p["mediaType"] for p in op3.payloads) == {"AUDIO": len(humans) - invalid}
