"""Coverage figures of the report from a real preset run: a viewer missing from the lookup file
counts as a contact not found; distinct contacts and media are those of the events sent."""

from __future__ import annotations

import csv
from pathlib import Path

from support import Cli, seed_sample_media

from importer.dashboard.data import gather
from importer.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]
EXPORT = REPO / "sample_data" / "mux" / "views-2025-03.csv"
LOOKUP = REPO / "sample_data" / "mux" / "contacts.csv"


def test_contacts_not_found_and_distinct_counts_of_a_mux_export(cli: Cli, simulator: Simulator) -> None:
    cli.use_mapping((REPO / "mappings" / "mux-data-views.yaml").read_text(encoding="utf-8"))
    cli.token(simulator.token)
    seed_sample_media(simulator)  # the media objects exist: this is about the events
    ran = cli.run(simulator.url, EXPORT, extra=("--lookup", f"contacts={LOOKUP}", "--object-type", "VIDEO=2-1234567"))
    assert ran.code == 1
    with open(ran.results, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    missing = [r for r in rows if r["field"] == "contactId" and "not found in lookup" in r["error"]]
    assert missing  # the sample has viewers the lookup file does not know
    arrived = [r["event"] for r in simulator.client.events()]
    data = gather(cli.state)
    assert data.not_found_events == len(missing)
    assert data.contacts == len({e["contactId"] for e in arrived})
    assert data.media == len({e.get("mediaBridgeId", e.get("externalId")) for e in arrived})
    assert data.outcomes["sent"] == len(arrived)
