"""Media objects before events: gather the inputs' media, sync them, and fill the events' ids.

``run`` calls ``prepare_media`` before sending (unless ``--no-media-sync``, which keeps the ids
the state already has) with the media its first read gathered (``importer.run.prepass``);
``media sync`` is ``sync_command``; ``check`` is ``check_media`` (the state only, no token). Each
reads only the columns the media's rules name; the events' read comes after.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from importer.hubspot.auth import Credentials
from importer.hubspot.events import Event
from importer.hubspot.media import SyncPlan, SyncReport, sync
from importer.hubspot.pacing import DailyQuota, RateLimiter
from importer.hubspot.sender import Sender
from importer.mapping.encode import FIELD_ORDER
from importer.mapping.media import MediaResolver, MediaTable
from importer.run.options import MediaOptions
from importer.run.pipeline import Pipeline
from importer.run.prepass import read_needs
from importer.state.journal import Journal
from importer.state.lock import StateLock
from importer.state.media import MediaMap

if TYPE_CHECKING:
    from importer.run.options import RunOptions


def gather(pipeline: Pipeline) -> MediaTable:
    """Every distinct media of the pipeline's inputs, described by the mapping's ``media:`` section."""
    media = read_needs(pipeline, [], True).media
    assert media is not None
    return media


def fill_known_ids(events: list[Event], id_map: MediaMap) -> int:
    """``retry``: give events sent without a media id (their media could not be created then) the id
    the state knows now (a later run or ``media sync`` created it). Returns how many got one."""
    bodies = [json.loads(e.payload) for e in events]
    missing = [i for i, b in enumerate(bodies) if b.get("mediaBridgeId") is None and b.get("externalId") is not None]
    if not missing:
        return 0
    ids, _ = id_map.lookup(pa.array([str(bodies[i]["externalId"]) for i in missing], pa.string()))
    filled = 0
    for i, object_id in zip(missing, ids.to_pylist(), strict=True):
        if object_id is None:
            continue  # still unknown: sent as it was, HubSpot's answer says why
        body = {**bodies[i], "mediaBridgeId": object_id}
        ordered = {k: body[k] for k in FIELD_ORDER if k in body} | body
        events[i].payload = json.dumps(ordered, ensure_ascii=False, separators=(",", ":")).encode()
        events[i].hold = None
        filled += 1
    return filled


def object_types(pipeline: Pipeline, options: MediaOptions) -> dict[str, str]:
    media = pipeline.mapping.media
    assert media is not None
    return {**media.object_types, **options.object_types}


def install(pipeline: Pipeline, plan: SyncPlan, id_map: MediaMap, report: SyncReport | None) -> None:
    """Serve the events' media ids from the state (after the sync, when there was one)."""
    keys = plan.media.table.column("externalId").combine_chunks()
    ids, _ = id_map.lookup(keys)
    failed = pa.nulls(len(keys), pa.string())
    if report is not None and report.failed:
        names = pa.array(list(report.failed), pa.string())
        at = pc.index_in(keys, value_set=names)
        failed = pc.take(pa.array(list(report.failed.values()), pa.string()), at)
    pipeline.media = MediaResolver(keys, ids, plan.problems, failed)


async def prepare_media(
    pipeline: Pipeline, sender: Sender, db: sqlite3.Connection, options: MediaOptions, media: MediaTable | None = None
) -> SyncReport:
    """``run``'s first step: sync the inputs' media (``media``, else gathered now) and fill the events' ids."""
    media_spec = pipeline.mapping.media
    assert media_spec is not None
    if media is None:
        media = await asyncio.to_thread(gather, pipeline)
    id_map = MediaMap(db)
    plan = SyncPlan.of(media, id_map, media_spec.api)
    report: SyncReport | None = None
    if options.sync:
        report = await sync(plan, id_map, sender, api=media_spec.api, object_types=object_types(pipeline, options),
                            update=options.update)  # fmt: skip
    else:
        report = SyncReport()
        plan.fill(report)
    install(pipeline, plan, id_map, report)
    return report


def check_media(pipeline: Pipeline, state_dir: str) -> SyncReport:
    """``check``: the media, how many the state knows and how many a sync would create; fills the ids."""
    media_spec = pipeline.mapping.media
    assert media_spec is not None
    media = gather(pipeline)
    journal = Path(state_dir) / "journal.sqlite"
    db = sqlite3.connect(journal if journal.exists() else ":memory:")
    try:
        id_map = MediaMap(db)
        plan = SyncPlan.of(media, id_map, media_spec.api)
        report = SyncReport()
        plan.fill(report)
        install(pipeline, plan, id_map, None)
    finally:
        db.close()
    return report


def sync_command(
    pipeline: Pipeline,
    run: RunOptions,
    credentials: Credentials | None,
    options: MediaOptions,
    *,
    dry_run: bool = False,
) -> SyncReport:
    """``media sync``: with ``dry_run`` the plan from the state alone, else the sync itself."""
    media_spec = pipeline.mapping.media
    assert media_spec is not None
    pipeline.preflight()
    if dry_run:
        return check_media(pipeline, run.state_dir)
    assert credentials is not None
    with StateLock(run.state_dir):
        journal = Journal(run.state_dir)
        try:
            media = gather(pipeline)
            id_map = MediaMap(journal.db)
            plan = SyncPlan.of(media, id_map, media_spec.api)
            return asyncio.run(_sync(plan, id_map, run, credentials, media_spec.api, object_types(pipeline, options),
                                     options.update))  # fmt: skip
        finally:
            journal.close()


async def _sync(
    plan: SyncPlan,
    id_map: MediaMap,
    run: RunOptions,
    credentials: Credentials,
    api: str,
    types: dict[str, str],
    update: bool,
) -> SyncReport:
    sender = Sender(
        run.base_url,
        credentials,
        RateLimiter(run.rate),
        DailyQuota(run.daily_reserve),
        concurrency=run.concurrency,
        timeout_s=run.timeout_s,
        retry=run.retry,
        transport=run.transport,
    )
    try:
        return await sync(plan, id_map, sender, api=api, object_types=types, update=update)
    finally:
        await sender.aclose()
