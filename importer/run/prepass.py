"""What must exist in HubSpot before the first event goes, gathered in one read of the inputs.

Contacts are looked up and media objects created before any event is sent, and a media object is
described by every row that names it (the first title, the longest duration): that needs all the
rows before the first event, so it cannot share the events' read without holding every event in
memory. It shares one read instead: the emails of every hubspot lookup and the media, reading only
the columns those rules name (Parquet reads those columns alone; CSV and JSON Lines convert them
alone). When the media's rules use a hubspot lookup themselves, they are gathered after the
contacts are known, in a read of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from importer.hubspot.contacts import EmailFinder
from importer.mapping.media import MediaCollector, MediaTable, describe, media_columns, media_exprs, uses_lookup
from importer.mapping.values import Frame
from importer.run.pipeline import Pipeline
from importer.source.readers import iter_batches


@dataclass
class Needs:
    """The distinct emails of each hubspot lookup, and the inputs' media (None: not gathered)."""

    emails: dict[str, set[str]] = field(default_factory=dict)
    media: MediaTable | None = None


def media_after_contacts(pipeline: Pipeline, lookups: list[str]) -> bool:
    """Whether the media's rules look up in a hubspot lookup (then they wait for the contacts)."""
    return pipeline.mapping.media is not None and uses_lookup(media_exprs(pipeline.mapping), lookups)


def read_needs(pipeline: Pipeline, lookups: list[str], media: bool) -> Needs:
    """One read of ``pipeline``'s inputs for the emails of ``lookups`` and (with ``media``) the media."""
    finders = [EmailFinder(pipeline, name) for name in lookups]
    collector = MediaCollector() if media else None
    needs = Needs()
    if not finders and collector is None:
        return needs
    columns = {c for f in finders for c in f.columns()}
    if collector is not None:
        columns |= media_columns(pipeline.mapping)
    for source in pipeline.sources:
        for batch in iter_batches(source, pipeline.mapping.input, sorted(columns)):
            frame = Frame(batch.data, batch.num_rows, pipeline.plan.lookups)
            for finder in finders:
                finder.add(frame)
            if collector is not None:
                collector.add(describe(pipeline.mapping, frame, source.path, batch.row_numbers))
    needs.emails = {f.name: f.found for f in finders}
    if collector is not None:
        assert pipeline.mapping.media is not None
        needs.media = collector.table()
        needs.media.api = pipeline.mapping.media.api
    return needs
