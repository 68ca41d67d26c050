"""Media objects end to end against the simulator (strict: an event naming no object is refused), on
both routes: the CRM objects API and the dated Media Bridge objects API."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPO, Cli, CliResult, media_requests

from importer.simulator import Simulator

from .helpers import Plays, creates, mapping, object_types, ours, write_plays

MakeSim = Callable[..., Simulator]
ROUTES = ("crm", "objects")


def _use(cli: Cli, sim: Simulator, api: str) -> None:
    cli.use_mapping(mapping(api, object_types(sim) if api == "crm" else None))
    cli.token(sim.token)


def _sync(cli: Cli, sim: Simulator, plays: Plays, *options: str) -> CliResult:
    """``media sync`` of ``plays`` against the simulator, no client-side rate limit, quiet."""
    return cli("media", "sync", plays.path, *options, "-m", cli.mapping, "--state-dir", cli.state,
               "--base-url", sim.url, "--rate", "none", "-q")  # fmt: skip


@pytest.mark.parametrize("api", ROUTES)
def test_a_fresh_account_gets_every_media_once_then_every_event_with_its_id(
    api: str, tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=130, rows=400, seed=3)
    sim = make_simulator(burst=0)
    _use(cli, sim, api)
    before = Counter(o["mediaType"] for o in sim.client.media()["objects"])  # other media of the account
    pages = sum(max(1, -(-before[t] // 100)) for t in set(plays.media.values()))
    ran = cli.run(sim.url, plays.path)
    assert ran.code == 0, ran.out + ran.err
    objects = ours(sim)
    assert Counter(o["externalId"] for o in objects) == Counter(dict.fromkeys(plays.media, 1))
    assert sim.client.media()["duplicate_external_ids"] == 0
    by_ext = {o["externalId"]: o for o in objects}
    for ext, media_type in plays.media.items():
        obj = by_ext[ext]
        assert obj["mediaType"] == media_type
        assert obj["title"] == plays.titles[ext]  # the first non-empty title of its rows
        assert obj["duration"] == plays.longest[ext]  # the longest, in ms
        assert obj["oembedUrl"] == f"https://player.example.com/oembed?url=https://cdn.example.com/{ext}.mp4"
    # Every event went with the id of its media's object, and HubSpot bound it to that object.
    events = sim.client.events()
    assert {e["event"]["sessionId"] for e in events} == plays.sessions
    for record in events:
        event = record["event"]
        assert event["mediaBridgeId"] == by_ext[event["externalId"]]["id"]
        assert record["response"]["mediaBridgeId"] == event["mediaBridgeId"]
    requests = sim.client.media()["requests"]
    if api == "crm":  # 100 inputs a batch; the account's objects of each media type listed 100 a page
        assert requests.get("crm-batch-create") == sum(-(-n // 100) for n in Counter(plays.media.values()).values())
        assert requests.get("crm-list") == pages
    else:
        assert requests.get("objects-create") == len(plays.media)
        assert requests.get("objects-list") == pages
    assert ran.summary["media"]["created"] == len(plays.media)

    # The rerun, and a nightly run with a new file of known media: no media request at all.
    sim.client.reset()
    again = cli.run(sim.url, plays.path, extra=("--force",))
    assert again.code == 0
    later = write_plays(tmp_path / "later.csv", media=130, rows=50, seed=9, prefix="n")
    nightly = cli.run(sim.url, later.path)
    assert nightly.code == 0 and nightly.counts["sent"] == 50
    assert media_requests(sim) == 0
    assert nightly.summary["media"]["known"] == nightly.summary["media"]["distinct"] == len(later.media)


@pytest.mark.parametrize("api", ROUTES)
def test_a_refused_media_fails_its_events_with_hubspots_message_and_a_later_run_sends_them(
    api: str, tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=40, rows=120, seed=5)
    sim = make_simulator(burst=0)
    _use(cli, sim, api)
    refused = {"m-3": "Property values were not valid: hs_title is too long", "m-17": "Duplicate title"}
    sim.client.seed_media(refuse=dict(refused))
    ran = cli.run(sim.url, plays.path)
    assert ran.code == 1
    assert ran.summary["media"]["failed"] == 2 and ran.summary["media"]["created"] == 38
    assert set(ran.summary["media"]["failed_media"]) == set(refused)
    failed = [r for r in ran.rows if r["status"] == "failed"]
    assert failed and {json.loads(r["payload"])["externalId"] for r in failed} == set(refused)
    for row in failed:
        ext = json.loads(row["payload"])["externalId"]
        assert refused[ext] in row["error"]  # HubSpot's own message, input by input
    sent_sessions = {e["event"]["sessionId"] for e in sim.client.events()}
    assert sent_sessions == plays.sessions - {json.loads(r["payload"])["sessionId"] for r in failed}
    if api == "crm":
        assert "207" in sim.client.stats()["by_status"]

    # HubSpot takes them now: the next run creates the two media and sends their events, once.
    sim.client.seed_media(refuse=dict.fromkeys(refused))
    again = cli.run(sim.url, plays.path)
    assert again.code == 0, again.out
    assert again.summary["media"]["created"] == 2
    assert Counter(o["externalId"] for o in ours(sim)) == Counter(dict.fromkeys(plays.media, 1))
    sessions = Counter(e["event"]["sessionId"] for e in sim.client.events())
    assert sessions == Counter(dict.fromkeys(plays.sessions, 1))


@pytest.mark.parametrize("api", ROUTES)
def test_retry_after_a_media_sync_sends_the_held_events_with_their_new_media_ids(
    api: str, tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=12, rows=36, seed=9)
    sim = make_simulator(burst=0)
    _use(cli, sim, api)
    refused = {"m-4": "Duplicate title"}
    sim.client.seed_media(refuse=dict(refused))
    ran = cli.run(sim.url, plays.path)
    assert ran.code == 1
    held = {json.loads(r["payload"])["sessionId"] for r in ran.rows if r["status"] == "failed"}
    assert held and all("mediaBridgeId" not in json.loads(r["payload"]) for r in ran.rows if r["status"] == "failed")
    # HubSpot takes the media now; `media sync` creates it; `retry` sends the held events with its id.
    sim.client.seed_media(refuse=dict.fromkeys(refused))
    code, out, _ = _sync(cli, sim, plays)
    assert code == 0, out
    (created,) = [o for o in ours(sim) if o["externalId"] == "m-4"]
    code, out, _ = cli("retry", ran.results, "--state-dir", cli.state, "--base-url", sim.url, "--rate", "none", "-q")
    assert code == 0, out
    events = [e["event"] for e in sim.client.events()]
    again = [e for e in events if e["sessionId"] in held]
    assert {e["sessionId"] for e in again} == held
    assert {e.get("mediaBridgeId") for e in again} == {created["id"]}
    assert Counter(e["sessionId"] for e in events) == Counter(dict.fromkeys(plays.sessions, 1))


def test_a_404_from_the_dated_objects_route_points_at_the_crm_route_not_the_base_url(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An account without the dated API version answers 404 on its paths (as the simulator does for a
    # version it does not serve): the base URL is right, the route is what to change.
    from importer.hubspot import media as media_api

    monkeypatch.setattr(media_api, "OBJECTS_PATH", "/media-bridge/2099-01/objects")
    plays = write_plays(tmp_path / "plays.csv", media=4, rows=8, seed=2)
    sim = make_simulator(burst=0)
    _use(cli, sim, "objects")
    code, out, err = _sync(cli, sim, plays)
    assert code == 3, out + err
    assert "HubSpot answered 404 for /media-bridge/2099-01/objects/" in err
    assert "use the CRM route instead: media.api: crm" in err
    assert "base URL looks wrong" not in err


@pytest.mark.parametrize("api", ROUTES)
def test_objects_created_but_not_recorded_are_found_by_the_listing_not_created_again(
    api: str, tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=60, rows=60, seed=7)
    sim = make_simulator(burst=0)
    _use(cli, sim, api)
    # What a sync killed right after HubSpot answered leaves: objects the state does not know.
    existing = random.Random(11).sample(sorted(plays.media), 25)
    sim.client.seed_media([{"externalId": e, "mediaType": plays.media[e], "title": e} for e in existing])
    code, out, _ = _sync(cli, sim, plays)
    assert code == 0, out
    assert "found in HubSpot 25, created 35" in out
    assert Counter(o["externalId"] for o in ours(sim)) == Counter(dict.fromkeys(plays.media, 1))
    assert cli.run(sim.url, plays.path).code == 0
    assert len(sim.client.events()) == 60


@pytest.mark.parametrize("api", ROUTES)
def test_kill_9_during_a_sync_then_a_rerun_leaves_no_duplicate(
    api: str, tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=300, rows=300, seed=13)
    sim = make_simulator(burst=0, latency_ms=15)
    _use(cli, sim, api)
    # Seeded kill point: after this many create requests reached the simulator.
    kill_after = random.Random(21 if api == "crm" else 22).randint(2, 3 if api == "crm" else 120)
    args = [sys.executable, "-m", "importer", "media", "sync", str(plays.path), "-m", str(cli.mapping),
            "--state-dir", str(cli.state), "--base-url", sim.url, "--rate", "none", "-q"]  # fmt: skip
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": sim.token, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while creates(sim) < kill_after:
            assert child.poll() is None, "the sync ended before the kill point"
            assert time.monotonic() < deadline
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    made = len(ours(sim))
    assert 0 < made < len(plays.media)  # killed in the middle

    code, out, _ = _sync(cli, sim, plays)
    assert code == 0, out
    assert Counter(o["externalId"] for o in ours(sim)) == Counter(dict.fromkeys(plays.media, 1))
    assert sim.client.media()["duplicate_external_ids"] == 0
    ran = cli.run(sim.url, plays.path)
    assert ran.code == 0
    assert Counter(e["event"]["sessionId"] for e in sim.client.events()) == Counter(dict.fromkeys(plays.sessions, 1))


def test_media_sync_dry_run_and_check_count_from_the_state_alone(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=30, rows=90, seed=17)
    sim = make_simulator(burst=0)
    _use(cli, sim, "objects")
    cli.env(HUBSPOT_ACCESS_TOKEN=None)  # neither needs a token
    code, out, _ = cli("media", "sync", plays.path, "-m", cli.mapping, "--state-dir", cli.state, "--dry-run")
    assert code == 0
    assert "30 distinct: 0 known in the state, 30 a sync would create, 0 invalid" in out
    assert sim.client.stats()["requests_total"] == 0
    cli.token(sim.token)
    assert cli.run(sim.url, plays.path).code == 0
    after_run = sim.client.stats()["requests_total"]
    cli.env(HUBSPOT_ACCESS_TOKEN=None)
    code, report = cli.check_json(plays.path)
    assert report["media_objects"]["known"] == 30 and report["media_objects"]["to_create"] == 0
    assert sim.client.stats()["requests_total"] == after_run


def test_a_sync_stopped_by_a_wrong_token_exits_3_and_creates_nothing(
    tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=10, rows=10)
    sim = make_simulator(burst=0)
    _use(cli, sim, "objects")
    cli.token("pat-na1-00000000-wrong-token-0000")
    ran = cli.run(sim.url, plays.path, check=False)
    assert ran.code == 3
    assert "401" in ran.out
    assert ours(sim) == [] and sim.client.events() == []


@pytest.mark.parametrize("api", ROUTES)
def test_update_patches_only_the_media_whose_description_changed(
    api: str, tmp_path: Path, cli: Cli, make_simulator: MakeSim
) -> None:
    plays = write_plays(tmp_path / "plays.csv", media=12, rows=24, seed=19)
    sim = make_simulator(burst=0)
    _use(cli, sim, api)
    assert cli.run(sim.url, plays.path).code == 0
    # The export renamed one media: its first titled row now says something else.
    text = plays.path.read_text(encoding="utf-8").replace(plays.titles["m-1"], "Renamed m-1")
    plays.path.write_text(text, encoding="utf-8")
    sim.client.reset()
    code, out, _ = _sync(cli, sim, plays)
    assert code == 0 and media_requests(sim) == 0  # without --update: nothing asked
    code, out, _ = _sync(cli, sim, plays, "--update")
    assert code == 0, out
    assert "updated 1" in out
    assert media_requests(sim) == 1  # one PATCH
    by_ext = {o["externalId"]: o for o in ours(sim)}
    assert by_ext["m-1"]["title"] == "Renamed m-1"
    assert Counter(o["externalId"] for o in ours(sim)) == Counter(dict.fromkeys(plays.media, 1))
    code, out, _ = _sync(cli, sim, plays, "--update")
    assert "updated 0" in out and media_requests(sim) == 1  # nothing changed since
