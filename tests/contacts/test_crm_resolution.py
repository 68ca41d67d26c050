"""Contacts resolved through HubSpot (``lookups: {crm: {source: hubspot}}``) against the simulator:
distinct normalised emails asked in batch reads of at most 100, answers cached in the state
directory, unknown emails as results records, ``check`` served from the cache only."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from importer.simulator import Simulator

from .helpers import (
    CONTACTS_READ,
    CRM_MAPPING,
    NOT_CACHED,
    NOT_FOUND,
    PLAYED,
    Cli,
    RecordingProxy,
    cached_contacts,
    sim_events,
    touch,
    write_csv,
)

MakeSim = Callable[..., Simulator]
MakeProxy = Callable[[Simulator], RecordingProxy]

KNOWN = {f"viewer{i:03d}@example.com": 70_000 + i for i in range(100)}
UNKNOWN = [f"stranger{j:02d}@example.org" for j in range(30)]
NEWCOMERS = {f"newcomer{i}@example.net": 80_000 + i for i in range(10)}  # seeded, first seen in a later file
LATE_UNKNOWN = [f"late{j}@example.org" for j in range(10)]
SEEDED = {**KNOWN, **NEWCOMERS}
STARTED_AT = "2025-03-01T10:00:00Z"


def spell(email: str, variant: int) -> str:
    """The same address as exports write it: any case, stray spaces."""
    forms = [email, email.upper(), f"  {email}  ", email.title(), f" {email.capitalize()}"]
    return forms[variant % len(forms)]


@dataclass
class Plays:
    path: Path
    email_of: dict[str, str | None]  # sessionId -> the normalised email of its row (None: blank)

    def sessions(self, emails: set[str] | dict[str, int]) -> set[str]:
        return {s for s, e in self.email_of.items() if e in emails}

    def distinct(self) -> set[str]:
        return {e for e in self.email_of.values() if e is not None}


def plays(path: Path, emails: list[str], rows: int, *, prefix: str = "s", blank_rows: int = 0) -> Plays:
    """``rows`` rows cycling through ``emails`` (each repeat spelled differently), then blank ones."""
    email_of: dict[str, str | None] = {}
    lines = []
    for r in range(rows):
        email = emails[r % len(emails)]
        session = f"{prefix}-{r:04d}"
        email_of[session] = email
        lines.append([session, spell(email, r + r // len(emails)), STARTED_AT, "vid-1"])
    for b in range(blank_rows):
        session = f"{prefix}-blank-{b}"
        email_of[session] = None
        lines.append([session, "", STARTED_AT, "vid-1"])
    write_csv(path, ["session_id", "email", "started_at", "video_id"], lines)
    return Plays(path, email_of)


def contact_ids(sim: Simulator) -> dict[str, int]:
    """sessionId -> contactId of every accepted media-played event (each session once)."""
    events = sim_events(sim, PLAYED)
    ids = {str(e["sessionId"]): int(e["contactId"]) for e in events}
    assert len(ids) == len(events), "a session was accepted twice"
    return ids


@pytest.fixture
def crm(make_simulator: MakeSim) -> Simulator:
    return make_simulator(burst=0, contacts=SEEDED)


@pytest.fixture
def first_file(tmp_path: Path) -> Plays:
    # 249 rows over 130 distinct emails (100 seeded, 30 unknown to HubSpot) and one blank email.
    return plays(tmp_path / "plays.csv", [*KNOWN, *UNKNOWN], 249, blank_rows=1)


# ---- one run ------------------------------------------------------------------------------------


def test_distinct_normalised_emails_are_asked_in_two_batch_reads(
    cli: Cli, crm: Simulator, make_proxy: MakeProxy, first_file: Plays
) -> None:
    assert len(first_file.email_of) == 250 and len(first_file.distinct()) == 130
    proxy = make_proxy(crm)
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    ran = cli.run(proxy.url, first_file.path)
    assert ran.code == 1, ran.out + ran.err  # the unknown and blank emails are invalid events

    calls = proxy.batch_reads()
    assert sorted(len(c) for c in calls) == [30, 100]
    asked = [e for c in calls for e in c]
    assert len(asked) == len(set(asked)) == 130, "an email was asked twice"
    assert set(asked) == first_file.distinct()  # trimmed and lower-cased, the blank one left out

    stats = crm.client.stats()
    assert stats["requests_total"] == stats["accepted_events"] + 2
    assert stats["by_status"].get("207", 0) >= 1  # a batch with unknown emails is a partial answer
    assert set(stats["by_status"]) <= {"200", "207"}
    assert ran.summary["contact_lookups"] == {"emails": 130, "asked": 130, "calls": 2}

    # Every row of a known contact arrived once, with that contact's id.
    known_sessions = first_file.sessions(KNOWN)
    assert len(known_sessions) == 200
    assert contact_ids(crm) == {s: KNOWN[str(first_file.email_of[s])] for s in known_sessions}
    assert ran.counts == {"sent": 200, "skipped": 0, "invalid": 50, "failed": 0, "not_sent": 0, "possibly_sent": 0}


def test_unknown_emails_are_invalid_results_records_not_a_crash(cli: Cli, crm: Simulator, first_file: Plays) -> None:
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    ran = cli.run(crm.url, first_file.path)
    by_session = {json.loads(r["payload"])["sessionId"]: r for r in ran.rows}
    unknown_sessions = first_file.sessions(set(UNKNOWN))
    assert len(unknown_sessions) == 49
    assert set(by_session) == unknown_sessions | {"s-blank-0"}
    for session in unknown_sessions:
        record = by_session[session]
        assert record["status"] == "invalid"
        assert record["field"] == "contactId"
        assert NOT_FOUND in record["error"]
        assert record["value"].strip().lower() == first_file.email_of[session]
        assert "contactId" not in json.loads(record["payload"])
    blank = by_session["s-blank-0"]
    assert blank["status"] == "invalid" and NOT_FOUND not in blank["error"] and "no contact" in blank["error"]


def test_every_answer_is_cached_in_the_state_directory(cli: Cli, crm: Simulator, first_file: Plays) -> None:
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    cli.run(crm.url, first_file.path)
    assert cached_contacts(cli.state) == {e: KNOWN.get(e) for e in first_file.distinct()}


@pytest.mark.parametrize(("distinct", "sizes"), [(1, [1]), (100, [100]), (101, [100, 1]), (250, [100, 100, 50])])
def test_batches_hold_at_most_100_emails(
    cli: Cli, crm: Simulator, make_proxy: MakeProxy, tmp_path: Path, distinct: int, sizes: list[int]
) -> None:
    # Distinct emails only: the first 120 of them are contacts HubSpot knows.
    pool = [*KNOWN, *NEWCOMERS, *(f"x{i:03d}@example.org" for i in range(distinct))]
    emails = pool[:distinct]
    data = plays(tmp_path / "plays.csv", emails, distinct)
    proxy = make_proxy(crm)
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    ran = cli.run(proxy.url, data.path)
    assert ran.code in (0, 1), ran.out + ran.err
    calls = proxy.batch_reads()
    assert sorted((len(c) for c in calls), reverse=True) == sizes
    assert sorted(e for c in calls for e in c) == sorted(emails)
    assert "400" not in crm.client.stats()["by_status"]  # the simulator refuses more than 100 inputs
    assert contact_ids(crm) == {s: SEEDED[str(e)] for s, e in data.email_of.items() if e in SEEDED}
    assert ran.summary["contact_lookups"]["calls"] == len(sizes)


# ---- reruns -------------------------------------------------------------------------------------


def test_a_rerun_asks_nothing_and_sends_nothing(
    cli: Cli, crm: Simulator, make_proxy: MakeProxy, first_file: Plays
) -> None:
    proxy = make_proxy(crm)
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    cli.run(proxy.url, first_file.path)
    before = crm.client.stats()

    unchanged = cli.run(proxy.url, first_file.path)  # the manifest says the file was imported
    assert unchanged.code == 0, unchanged.out + unchanged.err
    assert crm.client.stats()["requests_total"] == before["requests_total"]
    assert unchanged.summary["files_skipped_unchanged"] == 1

    touch(first_file.path)  # read again: every email is in the cache, every event in the journal
    reread = cli.run(proxy.url, first_file.path)
    assert reread.code == 1  # the unknown emails are still invalid, and still not asked again
    assert len(proxy.batch_reads()) == 2
    assert crm.client.stats()["requests_total"] == before["requests_total"]
    assert reread.summary["contact_lookups"] == {"emails": 130, "asked": 0, "calls": 0}
    assert reread.counts == {"sent": 0, "skipped": 200, "invalid": 50, "failed": 0, "not_sent": 0, "possibly_sent": 0}
    assert {r["status"] for r in reread.rows} == {"invalid"}


def test_a_run_with_new_emails_asks_only_for_those(
    cli: Cli, crm: Simulator, make_proxy: MakeProxy, first_file: Plays, tmp_path: Path
) -> None:
    proxy = make_proxy(crm)
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    cli.run(proxy.url, first_file.path)
    old = crm.client.events()

    # 60 rows of new sessions: 40 over 40 emails seen before (other spellings), 20 new emails.
    seen_before = [*list(KNOWN)[:30], *UNKNOWN[:10]]
    new = [*NEWCOMERS, *LATE_UNKNOWN]
    second = plays(tmp_path / "more.csv", [*seen_before, *new], 60, prefix="t")
    ran = cli.run(proxy.url, first_file.path, second.path)
    assert ran.code == 1
    calls = proxy.batch_reads()
    assert len(calls) == 3
    assert sorted(calls[-1]) == sorted(new)
    assert ran.summary["contact_lookups"] == {"emails": 60, "asked": 20, "calls": 1}
    ids = {s: c for s, c in contact_ids(crm).items() if s.startswith("t-")}
    assert ids == {s: SEEDED[str(e)] for s, e in second.email_of.items() if e in SEEDED}
    assert len(ids) == 40
    assert crm.client.events()[: len(old)] == old
    assert ran.counts == {"sent": 40, "skipped": 0, "invalid": 20, "failed": 0, "not_sent": 0, "possibly_sent": 0}


def test_emails_hubspot_did_not_know_are_asked_again_once_the_answer_is_old(
    cli: Cli, crm: Simulator, make_proxy: MakeProxy, first_file: Plays
) -> None:
    proxy = make_proxy(crm)
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    cli.run(proxy.url, first_file.path)  # the 30 strangers are cached as "not found"
    # Meanwhile ten of them became contacts.
    joined = {e: 90_000 + i for i, e in enumerate(UNKNOWN[:10])}
    crm.client.configure(contacts={**SEEDED, **joined})

    touch(first_file.path)
    recent = cli.run(proxy.url, first_file.path)  # default 24 h: answers this fresh are kept
    assert recent.summary["contact_lookups"] == {"emails": 130, "asked": 0, "calls": 0}
    assert len(proxy.batch_reads()) == 2

    touch(first_file.path)
    ran = cli.run(proxy.url, first_file.path, extra=["--recheck-contacts", "0"])
    assert sorted(proxy.batch_reads()[-1]) == sorted(UNKNOWN)  # found contacts are never asked again
    assert ran.summary["contact_lookups"] == {"emails": 130, "asked": 30, "calls": 1}
    assert cached_contacts(cli.state) == {e: SEEDED.get(e, joined.get(e)) for e in first_file.distinct()}
    newly = first_file.sessions(joined)
    assert ran.counts["sent"] == len(newly) > 0
    assert {s: c for s, c in contact_ids(crm).items() if s in newly} == {
        s: joined[str(first_file.email_of[s])] for s in newly
    }


# ---- check reads only the cache -----------------------------------------------------------------


def test_check_after_a_run_resolves_from_the_cache(cli: Cli, crm: Simulator, first_file: Plays) -> None:
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    cli.run(crm.url, first_file.path)
    requests = crm.client.stats()["requests_total"]
    code, report = cli.check_json(first_file.path)
    assert code == 1
    assert report["events"] == {"STARTED": 200}
    assert report["distinct"]["contacts"] == 100
    assert report["invalid"] == 50
    assert all(reason.startswith("contactId: ") for reason in report["invalid_by_reason"])
    assert crm.client.stats()["requests_total"] == requests  # check has no token: it asks nothing


def test_check_after_a_run_says_cached_unknown_emails_are_not_found(
    cli: Cli, crm: Simulator, first_file: Plays
) -> None:
    cli.use_mapping(CRM_MAPPING)
    cli.token(crm.token)
    cli.run(crm.url, first_file.path)
    _, report = cli.check_json(first_file.path)
    not_found = sum(n for reason, n in report["invalid_by_reason"].items() if NOT_FOUND in reason)
    assert not_found == 49
    assert not any(NOT_CACHED in reason for reason in report["invalid_by_reason"])


def test_check_without_a_state_directory_resolves_nothing(cli: Cli, first_file: Plays, tmp_path: Path) -> None:
    cli.use_mapping(CRM_MAPPING)
    nowhere = tmp_path / "no-state-here"
    code, report = cli.check_json(first_file.path, state_dir=nowhere)
    assert code == 1
    assert report["events"] == {}
    assert report["invalid"] == 250
    reasons = report["invalid_by_reason"]
    assert sum(n for r, n in reasons.items() if NOT_CACHED in r) == 249  # the blank email is no lookup
    assert not any(NOT_FOUND in r for r in reasons)
    assert not nowhere.exists()  # check writes no state


# ---- a token without the contacts scope ---------------------------------------------------------

SCOPED = {"writer": frozenset({"media_bridge.write"}), "full": None}


def test_missing_contacts_scope_stops_with_exit_3_naming_the_scope(
    cli: Cli, make_simulator: MakeSim, first_file: Plays
) -> None:
    sim = make_simulator(burst=0, contacts=SEEDED, tokens=SCOPED)
    cli.use_mapping(CRM_MAPPING)
    cli.token("writer")
    stopped = cli.run(sim.url, first_file.path)
    assert stopped.code == 3, stopped.out + stopped.err
    assert CONTACTS_READ in stopped.out + stopped.err
    assert CONTACTS_READ in str(stopped.summary["stopped"])
    stats = sim.client.stats()
    assert stats["accepted_events"] == 0
    assert stats["by_status"] == {"403": 1}  # the first batch read, then nothing
    assert stopped.counts["sent"] == 0
    assert cached_contacts(cli.state) == {}

    cli.token("full")  # the same command with a token that has the scope resumes
    resumed = cli.run(sim.url, first_file.path)
    assert resumed.code == 1
    assert resumed.counts == {"sent": 200, "skipped": 0, "invalid": 50, "failed": 0, "not_sent": 0, "possibly_sent": 0}
    assert contact_ids(sim) == {s: KNOWN[str(first_file.email_of[s])] for s in first_file.sessions(KNOWN)}


# ---- normalisation ------------------------------------------------------------------------------


def test_hubspot_lookup_without_lower_still_matches_mixed_case_answers(
    cli: Cli, crm: Simulator, tmp_path: Path
) -> None:
    rows = [
        ["s-1", "Viewer007@Example.com", STARTED_AT, "vid-1"],
        ["s-2", "VIEWER007@EXAMPLE.COM", STARTED_AT, "vid-1"],
    ]
    path = write_csv(tmp_path / "plays.csv", ["session_id", "email", "started_at", "video_id"], rows)
    cli.use_mapping(CRM_MAPPING.replace("{source: hubspot}", "{source: hubspot, normalize: [trim]}"))
    cli.token(crm.token)
    ran = cli.run(crm.url, path, check=False)
    # Either the mapping refuses a hubspot lookup that does not lower-case, or the contact resolves.
    if ran.code == 2:
        assert "normalize" in ran.err
        return
    assert contact_ids(crm) == {"s-1": 70_007, "s-2": 70_007}
