"""What must exist before the first event (contacts, media objects) is gathered in one read of the
inputs, of the columns those rules name alone; ``run --dry-run`` plans from the check's own read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import Cli, summary_of

from importer.mapping.spec import load_mapping
from importer.run import pipeline as pipeline_module
from importer.run import prepass
from importer.run.pipeline import Pipeline
from importer.run.prepass import media_after_contacts, read_needs
from importer.simulator import Simulator
from importer.source.readers import Batch, SourceFile, iter_batches

MAPPING = """\
lookups:
  crm: {source: hubspot}
fields:
  sessionId: session_id
  externalId: video_id
  mediaType: {const: VIDEO}
  contactId: {lookup: crm, match: email, get: contactId}
events:
  - state: STARTED
    timestamp: started_at
media:
  api: objects
  title: title
  duration: {column: seconds, unit: s}
"""
HEADER = "session_id,email,video_id,title,seconds,page,started_at\n"
EMAILS = {f"viewer{i}@example.com": 50_000 + i for i in range(6)}


def _write(folder: Path, files: int, rows: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        lines = [
            f"s{f}-{r},Viewer{r % 6}@Example.com,clip-{r % 4},Clip {r % 4},{10 + r},/p/{r},2025-03-01T10:{r:02d}:00Z\n"
            for r in range(rows)
        ]
        path = folder / f"plays-{f}.csv"
        path.write_text(HEADER + "".join(lines))
        paths.append(path)
    return paths


class Reads:
    """Counts the reads of each input per module, with the columns each read asked for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count: Counter[tuple[str, str]] = Counter()
        self.columns: dict[str, list[str] | None] = {}
        for name, module in (("prepass", prepass), ("pipeline", pipeline_module)):
            monkeypatch.setattr(module, "iter_batches", self._counting(name))

    def _counting(self, name: str) -> Callable[..., Iterator[Batch]]:
        def counted(source: SourceFile, options: Any, columns: Sequence[str] | None = None) -> Iterator[Batch]:
            self.count[(name, Path(source.path).name)] += 1
            self.columns[name] = None if columns is None else list(columns)
            return iter_batches(source, options, columns)

        return counted


def _ready(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch, rows: int
) -> tuple[Simulator, list[Path], Reads]:
    """A simulator that knows the contacts, two input files, the mapping and the token; reads counted."""
    sim = make_simulator(burst=0, contacts=EMAILS)
    inputs = _write(tmp_path / "in", files=2, rows=rows)
    cli.use_mapping(MAPPING)
    cli.token(sim.token)
    return sim, inputs, Reads(monkeypatch)


def _once_each(inputs: list[Path]) -> Counter[tuple[str, str]]:
    """Each input read once before the events (prepass) and once for them (pipeline)."""
    return Counter((module, p.name) for module in ("prepass", "pipeline") for p in inputs)


def test_a_run_with_contacts_and_media_reads_each_input_once_before_the_events(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, inputs, reads = _ready(tmp_path, cli, make_simulator, monkeypatch, rows=12)
    results = tmp_path / "r.csv"
    code, _, err = cli("run", tmp_path / "in", "-m", cli.mapping, "--results", results, "--state-dir", cli.state,
                       "--base-url", sim.url, "--rate", "none")  # fmt: skip
    assert code == 0, err
    assert reads.count == _once_each(inputs)
    # The first read asks for the columns the contact match and the media rules name, no others.
    assert reads.columns["prepass"] == ["email", "seconds", "title", "video_id"]
    s = summary_of(results)
    assert s["counts"]["sent"] == 24
    assert s["contact_lookups"] == {"emails": 6, "asked": 6, "calls": 1}
    assert s["media"]["created"] == 4
    titles = {o["externalId"]: o.get("title") for o in sim.client.media()["objects"] if o.get("externalId")}
    assert {k: v for k, v in titles.items() if k.startswith("clip-")} == {f"clip-{i}": f"Clip {i}" for i in range(4)}
    contacts = {e["event"]["sessionId"]: e["event"]["contactId"] for e in sim.client.events()}
    assert contacts["s1-7"] == EMAILS["viewer1@example.com"]


def test_dry_run_plans_from_the_checks_own_read(
    tmp_path: Path, cli: Cli, make_simulator: Callable[..., Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    sim, inputs, reads = _ready(tmp_path, cli, make_simulator, monkeypatch, rows=5)
    code, out, err = cli("run", tmp_path / "in", "-m", cli.mapping, "--results", tmp_path / "r.csv", "--dry-run",
                         "--state-dir", cli.state, "--base-url", sim.url)  # fmt: skip
    assert code in (0, 1), err
    # One read for the media (their columns alone), one for the report and the plan together.
    assert reads.count == _once_each(inputs)
    assert "Plan: " in out + err
    assert sim.client.stats()["requests_total"] == 0


def test_media_rules_that_use_a_contact_lookup_wait_for_the_contacts(tmp_path: Path) -> None:
    after = MAPPING.replace("  title: title\n", "  title: {lookup: crm, match: email, get: contactId}\n")
    before = load_mapping(str(_mapping_file(tmp_path / "a.yaml", MAPPING)))
    uses = load_mapping(str(_mapping_file(tmp_path / "b.yaml", after)))
    inputs = [str(p) for p in _write(tmp_path / "in", files=1, rows=3)]
    assert not media_after_contacts(Pipeline(before, inputs), ["crm"])
    assert media_after_contacts(Pipeline(uses, inputs), ["crm"])
    # Without the media, the first read gathers the emails alone.
    needs = read_needs(Pipeline(uses, inputs), ["crm"], False)
    assert needs.media is None
    assert needs.emails == {"crm": {"viewer0@example.com", "viewer1@example.com", "viewer2@example.com"}}


def _mapping_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
