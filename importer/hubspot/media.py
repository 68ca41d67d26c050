"""Media objects in HubSpot: find the ones that exist, create the missing ones, update changed ones.

Two routes, chosen by the mapping's ``media.api``:

- ``crm``: the CRM objects API on the Media Bridge app's object type per media type. Existing
  objects are listed 100 a page (``GET /crm/v3/objects/{type}?properties=hs_external_id``; search is
  capped at 10,000 results and 5 requests/s), new ones created 100 a call (``batch/create``); a 207
  answer is read input by input.
- ``objects``: the dated Media Bridge objects API (``OBJECTS_API_VERSION``): listed page by page per
  media type, created one object per request.

Every request goes through the run's ``Sender``: the same limiter, daily quota reserve, retries and
OAuth refresh as the events. What HubSpot creates is recorded in the state directory as soon as it
answers, and objects are listed before any is created, so a sync killed at any point and run again
creates no duplicate. Media already in the state are not asked about at all.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import ConfigError
from importer.hubspot.sender import Sender
from importer.mapping.media import TEXT_PROPERTIES, MediaTable

OBJECTS_API_VERSION = "2026-09"
OBJECTS_PATH = f"/media-bridge/{OBJECTS_API_VERSION}/objects"
CRM_OBJECTS_PATH = "/crm/v3/objects"
BATCH_SIZE = 100  # the CRM objects API's batch limit
PAGE_SIZE = 100
CREATES_IN_FLIGHT = 8  # single creates of the objects API at once
CREATE_CHUNK = 1000  # media turned into Python objects at once for creating
CRM_PROPERTIES = {
    "title": "hs_title",
    "duration": "hs_duration",
    "oembed_url": "hs_oembed_url",
    "file_url": "hs_file_url",
    "thumbnail_url": "hs_thumbnail_url",
    "poster_url": "hs_poster_url",
    "details_page_link": "hs_details_page_link",
}
OBJECTS_FIELDS = {
    "title": "title",
    "duration": "duration",
    "oembed_url": "oembedUrl",
    "file_url": "fileUrl",
    "thumbnail_url": "thumbnailUrl",
    "poster_url": "posterUrl",
    "details_page_link": "detailsPageLink",
}


@dataclass(frozen=True)
class MediaRecord:
    """One media object HubSpot has: its externalId, media type, object id and the digest of the
    properties last sent (None: found by a listing, not sent by this importer)."""

    external_id: str
    media_type: str | None
    object_id: int
    digest: str | None


class IdStore(Protocol):
    """Where the sync keeps what HubSpot answered (``importer.state.media.MediaMap``: the state directory)."""

    def record(self, records: Iterable[MediaRecord]) -> None: ...

    def lookup(self, external_ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        """Per externalId: the object id (null: unknown) and the digest last sent."""
        ...


@dataclass
class MediaItem:
    """One media object as the mapping describes it."""

    external_id: str
    media_type: str
    properties: dict[str, Any]

    @property
    def digest(self) -> str:
        text = json.dumps([self.media_type, self.properties], sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


@dataclass
class SyncReport:
    """What a media sync found and did."""

    distinct: int = 0
    known: int = 0  # already in the state directory
    invalid: int = 0  # HubSpot would refuse them: their events are invalid
    to_create: int = 0
    found: int = 0  # existed in HubSpot though not in the state
    created: int = 0
    updated: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # externalId -> HubSpot's message
    problems: dict[str, list[str]] = field(default_factory=dict)  # reason -> 'file:row externalId' samples
    problem_counts: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=lambda: {"list": 0, "create": 0, "update": 0})

    def to_dict(self) -> dict[str, Any]:
        return {
            "distinct": self.distinct,
            "known": self.known,
            "invalid": self.invalid,
            "to_create": self.to_create,
            "found": self.found,
            "created": self.created,
            "updated": self.updated,
            "failed": len(self.failed),
            "failed_media": dict(list(self.failed.items())[:100]),
            "invalid_by_reason": dict(self.problem_counts),
            "requests": dict(self.requests),
        }

    def render_plan(self) -> str:
        """What ``check`` and ``media sync --dry-run`` say: from the inputs and the state alone."""
        lines = [
            f"Media            {self.distinct:,} distinct: {self.known:,} known in the state, "
            f"{self.to_create:,} a sync would create, {self.invalid:,} invalid"
        ]
        lines.extend(self._problem_lines())
        return "\n".join(lines)

    def _problem_lines(self) -> list[str]:
        lines = []
        for reason, count in self.problem_counts.items():
            lines.append(f"  {count:>10,}  media: {reason}")
            lines.extend(f"              e.g. {sample}" for sample in self.problems.get(reason, []))
        return lines

    def render(self) -> str:
        r = self.requests
        lines = [
            f"Media            {self.distinct:,} distinct: {self.known:,} known in the state, "
            f"{self.invalid:,} invalid, {self.to_create:,} to create",
            f"  found in HubSpot {self.found:,}, created {self.created:,}, updated {self.updated:,}, "
            f"failed {len(self.failed):,} ({r['list']} list, {r['create']} create, {r['update']} update requests)",
        ]
        lines.extend(self._problem_lines())
        for external_id, message in list(self.failed.items())[:5]:
            lines.append(f"  failed: {external_id}: {message}")
        return "\n".join(lines)


def items_of(media: MediaTable, mask: pa.Array) -> list[MediaItem]:
    """The media rows under ``mask`` as items (a Python object each: only those to send)."""
    rows = media.table.filter(mask).to_pylist()
    out = []
    for row in rows:
        props = {p: row[p] for p in TEXT_PROPERTIES if row[p] is not None}
        if row["duration"] is not None:
            props["duration"] = int(row["duration"])
        out.append(MediaItem(str(row["externalId"]), str(row["mediaType"] or "OTHER"), props))
    return out


def digests(media: MediaTable) -> pa.Array:
    """The digest of every media's described properties (the same as ``MediaItem.digest``)."""
    return pa.array([i.digest for i in items_of(media, pa.array(np.ones(len(media), dtype=bool)))], pa.string())


class ListingFailed(Exception):
    """A listing page could not be read: creating without the whole listing could make duplicates."""


class Backend:
    """One way of finding, creating and updating media objects."""

    def __init__(self, sender: Sender, report: SyncReport) -> None:
        self.sender = sender
        self.report = report

    async def _call(self, kind: str, method: str, path: str, body: Any = None) -> tuple[Any, str | None]:
        """(answer body, None) on a 2xx, else (None, HubSpot's message); terminal errors raise."""
        payload = b"" if body is None else json.dumps(body).encode()
        self.report.requests[kind] += 1
        outcome, response = await self.sender.exchange(path, payload, method=method)
        if response is None:
            return None, outcome.error or f"HTTP {outcome.http_status}"
        try:
            return response.json(), None
        except ValueError:
            return {}, None

    async def _pages(self, path: str, params: dict[str, str]) -> AsyncIterator[list[dict[str, Any]]]:
        after: str | None = None
        while True:
            query = dict(params, limit=str(PAGE_SIZE), **({"after": after} if after else {}))
            body, error = await self._call("list", "GET", f"{path}?{urlencode(query)}")
            if body is None:
                raise ListingFailed(f"listing the existing media objects failed: {error}")
            yield list(body.get("results") or [])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    def existing(self, media_type: str) -> AsyncIterator[list[tuple[str, int]]]:
        raise NotImplementedError

    async def create(self, items: list[MediaItem], done: IdStore) -> None:
        raise NotImplementedError

    async def update(self, item: MediaItem, object_id: int) -> str | None:
        raise NotImplementedError


class CrmBackend(Backend):
    """The CRM objects API on the app's object type of each media type."""

    def __init__(self, sender: Sender, report: SyncReport, object_types: dict[str, str]) -> None:
        super().__init__(sender, report)
        self.object_types = object_types

    def path(self, media_type: str) -> str:
        return f"{CRM_OBJECTS_PATH}/{quote(self.object_types[media_type], safe='')}"

    async def existing(self, media_type: str) -> AsyncIterator[list[tuple[str, int]]]:
        async for results in self._pages(self.path(media_type), {"properties": "hs_external_id"}):
            found = []
            for obj in results:
                ext = (obj.get("properties") or {}).get("hs_external_id")
                if ext and str(obj.get("id", "")).isdigit():
                    found.append((str(ext), int(obj["id"])))
            yield found

    @staticmethod
    def properties(item: MediaItem) -> dict[str, str]:
        props = {CRM_PROPERTIES[k]: str(v) for k, v in item.properties.items()}
        props["hs_external_id"] = item.external_id
        return props

    async def create(self, items: list[MediaItem], done: IdStore) -> None:
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start : start + BATCH_SIZE]
            inputs = [{"properties": self.properties(i), "objectWriteTraceId": i.external_id} for i in chunk]
            body, error = await self._call("create", "POST", f"{self.path(chunk[0].media_type)}/batch/create",
                                           {"inputs": inputs})  # fmt: skip
            by_id = {i.external_id: i for i in chunk}
            created: list[MediaRecord] = []
            for obj in (body or {}).get("results") or []:
                ext = (obj.get("properties") or {}).get("hs_external_id") or obj.get("objectWriteTraceId")
                item = by_id.pop(str(ext), None) if ext is not None else None
                if item is not None and str(obj.get("id", "")).isdigit():
                    created.append(MediaRecord(item.external_id, item.media_type, int(obj["id"]), item.digest))
            done.record(created)
            self.report.created += len(created)
            for ext in by_id:  # every input without a result failed: say why, as HubSpot said it
                self.report.failed[ext] = error or _batch_error(body, ext)

    async def update(self, item: MediaItem, object_id: int) -> str | None:
        _, error = await self._call("update", "PATCH", f"{self.path(item.media_type)}/{object_id}",
                                    {"properties": self.properties(item)})  # fmt: skip
        return error


class ObjectsBackend(Backend):
    """The dated Media Bridge objects API: one object per create request."""

    @staticmethod
    def fields(item: MediaItem) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": item.media_type, "externalId": item.external_id}
        out.update({OBJECTS_FIELDS[k]: v for k, v in item.properties.items()})
        return out

    async def existing(self, media_type: str) -> AsyncIterator[list[tuple[str, int]]]:
        async for results in self._pages(f"{OBJECTS_PATH}/{media_type}", {}):
            yield [(str(o["externalId"]), int(o["id"])) for o in results
                   if o.get("externalId") and str(o.get("id", "")).isdigit()]  # fmt: skip

    async def create(self, items: list[MediaItem], done: IdStore) -> None:
        async def one(item: MediaItem) -> None:
            body, error = await self._call("create", "POST", OBJECTS_PATH, self.fields(item))
            if body is not None and str(body.get("id", "")).isdigit():
                done.record([MediaRecord(item.external_id, item.media_type, int(body["id"]), item.digest)])
                self.report.created += 1
            else:
                self.report.failed[item.external_id] = error or "HubSpot's answer carried no object id"

        # A few in flight at once; the limiter paces them.
        for start in range(0, len(items), CREATES_IN_FLIGHT):
            await asyncio.gather(*(one(i) for i in items[start : start + CREATES_IN_FLIGHT]))

    async def update(self, item: MediaItem, object_id: int) -> str | None:
        _, error = await self._call("update", "PATCH", f"{OBJECTS_PATH}/{object_id}", self.fields(item))
        return error


def _batch_error(body: Any, external_id: str) -> str:
    """HubSpot's message for one failed input of a 207: the error naming it, else the first error."""
    errors = [e for e in (body or {}).get("errors") or [] if isinstance(e, dict)]
    for err in errors:
        if external_id in json.dumps(err.get("context") or {}) or err.get("objectWriteTraceId") == external_id:
            return str(err.get("message") or err.get("category") or "refused")
    if errors:
        return str(errors[0].get("message") or errors[0].get("category") or "refused")
    return "HubSpot did not create this media object (no result and no error for it)"


def backend_for(api: str, sender: Sender, report: SyncReport, object_types: dict[str, str]) -> Backend:
    return CrmBackend(sender, report, object_types) if api == "crm" else ObjectsBackend(sender, report)


def check_object_types(api: str, media_types: list[str], object_types: dict[str, str]) -> None:
    """On the CRM route, every media type to create needs its object type: say which are missing."""
    if api != "crm":
        return
    missing = sorted(t for t in media_types if t not in object_types)
    if missing:
        raise ConfigError(
            f"no CRM object type for media type {', '.join(missing)}",
            hint="set media.object_types in the mapping (e.g. VIDEO: '2-1234567' or 'a123_Videos'; the Media "
            "Bridge app's object definitions name them) or pass --object-type VIDEO=2-1234567",
        )


@dataclass
class SyncPlan:
    """What a sync has to do, from the inputs' media and the state alone (no request)."""

    media: MediaTable
    problems: pa.Array
    known: pa.Array  # object id per media, null when the state does not know it
    digests: pa.Array  # the digest last sent per media, null when unknown

    @classmethod
    def of(cls, media: MediaTable, id_map: IdStore, api: str) -> SyncPlan:
        ids, sent = id_map.lookup(media.table.column("externalId").combine_chunks())
        return cls(media, media.problems(api), ids, sent)

    def fill(self, report: SyncReport) -> None:
        report.distinct = len(self.media)
        report.known = len(self.media) - self.known.null_count
        report.invalid = len(self.media) - self.problems.null_count
        report.to_create = int(pc.sum(self.create_mask()).as_py() or 0)
        if report.invalid:
            bad = self.media.table.filter(pc.is_valid(self.problems))
            reasons = pc.drop_null(self.problems)
            counts = pc.value_counts(reasons)
            report.problem_counts = dict(
                zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
            )
            for reason in report.problem_counts:
                rows = bad.filter(pc.equal(reasons, reason)).slice(0, 3).to_pylist()
                report.problems[reason] = [f"{r['_source']}:{r['_row']} externalId={r['externalId']!r}" for r in rows]

    def create_mask(self) -> pa.Array:
        return pc.and_(pc.is_null(self.problems), pc.is_null(self.known))


async def sync(
    plan: SyncPlan,
    id_map: IdStore,
    sender: Sender,
    *,
    api: str,
    object_types: dict[str, str],
    update: bool = False,
) -> SyncReport:
    """Create the media HubSpot lacks (listing first), record every id, PATCH changed ones with ``update``."""
    report = SyncReport()
    plan.fill(report)
    backend = backend_for(api, sender, report, object_types)
    todo = plan.media.table.filter(plan.create_mask())
    types = todo.column("mediaType")
    media_types = sorted(t for t in pc.unique(types).to_pylist() if t is not None)
    check_object_types(api, media_types, object_types)
    for media_type in media_types:
        of_type = todo.filter(pc.fill_null(pc.equal(types, media_type), False))
        # A set of ids, not objects: what stays in memory while the listing runs is small.
        wanted = set(of_type.column("externalId").to_pylist())
        try:
            async for page in backend.existing(media_type):
                found = [(ext, oid) for ext, oid in page if ext in wanted]
                # Found objects keep an unknown digest: --update compares against what this importer sent.
                id_map.record(MediaRecord(ext, media_type, oid, None) for ext, oid in found)
                wanted.difference_update(ext for ext, _ in found)
                report.found += len(found)
        except ListingFailed as exc:  # none of this type is created now; the next sync lists again
            report.failed.update(dict.fromkeys(wanted, str(exc)))
            continue
        left = of_type.filter(pc.is_in(of_type.column("externalId"), value_set=pa.array(sorted(wanted), pa.string())))
        for start in range(0, left.num_rows, CREATE_CHUNK):  # Python objects for one chunk at a time
            chunk = MediaTable(left.slice(start, CREATE_CHUNK))
            await backend.create(items_of(chunk, pa.array(np.ones(len(chunk), dtype=bool))), id_map)
    if update:
        await _update(plan, id_map, backend, report)
    return report


async def _update(plan: SyncPlan, id_map: IdStore, backend: Backend, report: SyncReport) -> None:
    known = pc.and_(pc.is_null(plan.problems), pc.is_valid(plan.known))
    current = digests(plan.media)
    changed = pc.and_(known, pc.fill_null(pc.not_equal(current, plan.digests), True))
    ids = pc.filter(plan.known, changed).to_pylist()
    for item, object_id in zip(items_of(plan.media, changed), ids, strict=True):
        error = await backend.update(item, int(object_id))
        if error is None:
            id_map.record([MediaRecord(item.external_id, item.media_type, int(object_id), item.digest)])
            report.updated += 1
        else:
            report.failed[item.external_id] = error
