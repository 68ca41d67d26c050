"""Media objects of the simulated account, on both of HubSpot's routes.

- CRM objects API on the Media Bridge app's object types: ``GET /crm/v3/objects/{type}`` (paged,
  ``properties=``), ``POST /crm/v3/objects/{type}`` (one), ``POST .../batch/create`` (up to 100; an
  answer 207 lists the inputs it refused), ``GET|PATCH /crm/v3/objects/{type}/{id}``.
- The dated Media Bridge objects API: ``POST /media-bridge/2026-09/objects``, ``GET
  /media-bridge/2026-09/objects/{mediaType}`` (paged), ``GET .../{mediaType}/{id}``, ``PATCH
  /media-bridge/2026-09/objects/{id}``.
- ``GET /media-bridge/v1/{appId}/settings/object-definitions/{mediaType}``: the object type of a
  media type (``objectTypeId`` 2-…, ``objectTypeName`` p{appId}_Videos, …).

Both routes share one store, as they do in HubSpot. Like HubSpot (as far as its docs say), nothing
here makes ``hs_external_id`` unique: creating the same externalId twice gives two objects, and
``/__sim/media`` counts such duplicates so a test can see them. Refusals can be seeded per
externalId (``POST /__sim/media {"refuse": {"ext-1": "message"}}``) to produce 207 partials.

In strict mode (the default) an event whose ``mediaBridgeId`` or ``externalId`` names no object is
refused with a 400 that names the media; an accepted event is answered with its object's id.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from importer.simulator.auth import error_body

OBJECTS_VERSION = "2026-09"  # the simulator's own copy: a client that drifts from it gets 404s
MEDIA_TYPES = ("VIDEO", "AUDIO", "DOCUMENT", "OTHER", "IMAGE")
_TYPE_NAMES = {"VIDEO": "Videos", "AUDIO": "Audios", "DOCUMENT": "Documents", "OTHER": "Others", "IMAGE": "Images"}
CRM_FIELDS = {
    "hs_title": "title",
    "hs_duration": "duration",
    "hs_oembed_url": "oembedUrl",
    "hs_file_url": "fileUrl",
    "hs_thumbnail_url": "thumbnailUrl",
    "hs_poster_url": "posterUrl",
    "hs_details_page_link": "detailsPageLink",
    "hs_external_id": "externalId",
}
OBJECT_FIELDS = (*CRM_FIELDS.values(), "transcriptUrl")
MAX_BATCH = 100
MAX_PAGE = 100
FIRST_ID = 7_000_001

_CRM = re.compile(r"^/crm/v3/objects/(?P<type>[^/]+)(?:/(?P<rest>batch/create|\d+))?$")
_OBJECTS = re.compile(rf"^/media-bridge/{OBJECTS_VERSION}/objects(?:/(?P<a>[A-Z]+|\d+))?(?:/(?P<b>\d+))?$")
_DEFINITION = re.compile(r"^/media-bridge/v1/(?P<app>\d+)/settings/object-definitions/(?P<type>[A-Z]+)$")


@dataclass(frozen=True)
class Route:
    name: str
    params: dict[str, str]


def route(method: str, path: str) -> Route | None:
    """The media endpoint a request names, or None (then it is no media endpoint)."""
    m = _CRM.match(path)
    if m and m.group("type") != "contacts":
        kind, rest = m.group("type"), m.group("rest")
        if rest is None:
            name = {"GET": "crm-list", "POST": "crm-create"}.get(method, "")
        elif rest == "batch/create":
            name = "crm-batch-create" if method == "POST" else ""
        else:
            name = {"GET": "crm-get", "PATCH": "crm-patch"}.get(method, "")
        return Route(name, {"type": unquote(kind), "id": rest or ""})
    m = _OBJECTS.match(path)
    if m:
        a, b = m.group("a"), m.group("b")
        if a is None:
            name = "objects-create" if method == "POST" else ""
        elif a.isdigit() and b is None:
            name = "objects-patch" if method == "PATCH" else ""
        elif b is None:
            name = "objects-list" if method == "GET" else ""
        else:
            name = "objects-get" if method == "GET" else ""
        return Route(name, {"a": a or "", "b": b or ""})
    m = _DEFINITION.match(path)
    if m:
        return Route("definition" if method == "GET" else "", {"app": m.group("app"), "type": m.group("type")})
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class MediaObject:
    id: int
    media_type: str
    fields: dict[str, Any]
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    def crm(self, wanted: list[str] | None = None) -> dict[str, Any]:
        props = {crm: str(self.fields[name]) for crm, name in CRM_FIELDS.items() if self.fields.get(name) is not None}
        props["hs_object_id"] = str(self.id)
        if wanted is not None:
            props = {k: v for k, v in props.items() if k in wanted or k == "hs_object_id"}
        return {"id": str(self.id), "properties": props, "createdAt": self.created_at,
                "updatedAt": self.updated_at, "archived": False}  # fmt: skip

    def dated(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(self.id), "mediaType": self.media_type}
        out.update({k: v for k, v in self.fields.items() if v is not None})
        out["createdAt"], out["updatedAt"] = self.created_at, self.updated_at
        return out


class MediaStore:
    """Every media object of the account; answers the media endpoints and vets events' media."""

    def __init__(self, app_id: int) -> None:
        self.app_id = app_id
        self.reset()

    def reset(self) -> None:
        self.objects: dict[int, MediaObject] = {}
        self.by_external: dict[str, list[int]] = {}
        self.refused: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self._next_id = FIRST_ID
        self._by_type: dict[str, list[int]] = {t: [] for t in MEDIA_TYPES}  # ids in listing order
        self._unsorted: set[str] = set()

    # ---- object types -------------------------------------------------------------------
    def type_id(self, media_type: str) -> str:
        return f"2-{self.app_id}{MEDIA_TYPES.index(media_type) + 1}"

    def type_name(self, media_type: str) -> str:
        return f"p{self.app_id}_{_TYPE_NAMES[media_type]}"

    def media_type_of(self, object_type: str) -> str | None:
        for media_type in MEDIA_TYPES:
            if object_type in (self.type_id(media_type), self.type_name(media_type)):
                return media_type
        return None

    # ---- the store ----------------------------------------------------------------------
    def add(self, media_type: str, fields: Mapping[str, Any], object_id: int | None = None) -> MediaObject:
        if object_id is None:
            object_id = self._next_id
        self._next_id = max(self._next_id, object_id + 1)
        obj = MediaObject(object_id, media_type, {k: fields.get(k) for k in OBJECT_FIELDS})
        self.objects[object_id] = obj
        ids = self._by_type[media_type]
        if ids and ids[-1] > object_id:
            self._unsorted.add(media_type)
        ids.append(object_id)
        ext = obj.fields.get("externalId")
        if ext:
            self.by_external.setdefault(str(ext), []).append(object_id)
        return obj

    def ids_of(self, media_type: str) -> list[int]:
        """Object ids of a media type in ascending order (the listings' order)."""
        if media_type in self._unsorted:
            self._by_type[media_type].sort()
            self._unsorted.discard(media_type)
        return self._by_type[media_type]

    def seed(self, items: list[Any]) -> int:
        """Objects that already exist in the account: ``{"mediaType", "id"?, "externalId"?, "title"?...}``."""
        for item in items:
            if not isinstance(item, dict) or item.get("mediaType") not in MEDIA_TYPES:
                raise ValueError("each object needs a mediaType of " + ", ".join(MEDIA_TYPES))
            object_id = item.get("id")
            if object_id is not None and (not isinstance(object_id, int) or object_id <= 0):
                raise ValueError("an object's id must be a positive integer")
            self.add(item["mediaType"], {"title": f"Media {object_id}", **item}, object_id)
        return len(items)

    def find(self, event: Mapping[str, Any]) -> MediaObject | str:
        """The object an event names (mediaBridgeId wins), or why it names none."""
        media_id = event.get("mediaBridgeId")
        if media_id is not None:
            obj = self.objects.get(media_id) if isinstance(media_id, int) else None
            return obj or f"mediaBridgeId {media_id} names no media object of this account"
        ext = str(event.get("externalId"))
        ids = self.by_external.get(ext)
        return self.objects[ids[0]] if ids else f"externalId '{ext}' names no media object of this account"

    def to_json(self, query: Mapping[str, str]) -> dict[str, Any]:
        objects = list(self.objects.values())
        if "externalId" in query:
            objects = [o for o in objects if o.fields.get("externalId") == query["externalId"]]
        return {
            "total": len(self.objects),
            "duplicate_external_ids": sum(len(ids) - 1 for ids in self.by_external.values()),
            "requests": dict(self.requests),
            "objects": [{"id": o.id, "mediaType": o.media_type, **o.fields} for o in objects],
        }

    # ---- endpoints ----------------------------------------------------------------------
    def handle(self, r: Route, query: Mapping[str, str], data: Any) -> tuple[int, dict[str, Any]]:
        self.requests[r.name] += 1
        handler = getattr(self, "_" + r.name.replace("-", "_"))
        result: tuple[int, dict[str, Any]] = handler(r.params, query, data)
        return result

    def _problem(self, media_type: str, fields: Mapping[str, Any], crm: bool) -> str | None:
        if not fields.get("title"):
            return "title is required" if not crm else "Property values were not valid: hs_title is required"
        if crm and media_type in ("VIDEO", "AUDIO") and not fields.get("oembedUrl"):
            return f"Property values were not valid: hs_oembed_url is required for {media_type}"
        if media_type == "IMAGE" and not fields.get("fileUrl"):
            return "a file URL is required for IMAGE"
        ext = fields.get("externalId")
        if ext is not None and str(ext) in self.refused:
            return self.refused[str(ext)]
        return None

    def _crm_type(self, params: Mapping[str, str]) -> str | tuple[int, dict[str, Any]]:
        media_type = self.media_type_of(params["type"])
        if media_type is None:
            return 400, error_body(f"Unable to infer object type from: {params['type']}", "VALIDATION_ERROR")
        return media_type

    @staticmethod
    def _crm_fields(properties: Any) -> dict[str, Any] | None:
        if not isinstance(properties, dict):
            return None
        fields: dict[str, Any] = {CRM_FIELDS[k]: v for k, v in properties.items() if k in CRM_FIELDS}
        if fields.get("duration") is not None:
            try:
                fields["duration"] = int(fields["duration"])
            except (TypeError, ValueError):
                return None
        return fields

    def _crm_list(self, params: Mapping[str, str], query: Mapping[str, str], _: Any) -> tuple[int, dict[str, Any]]:
        media_type = self._crm_type(params)
        if not isinstance(media_type, str):
            return media_type
        wanted = [p for p in query.get("properties", "").split(",") if p]
        return 200, _page(self.ids_of(media_type), query, 10, lambda i: self.objects[i].crm(wanted))

    def _crm_create(self, params: Mapping[str, str], _: Mapping[str, str], data: Any) -> tuple[int, dict[str, Any]]:
        media_type = self._crm_type(params)
        if not isinstance(media_type, str):
            return media_type
        fields = self._crm_fields(data.get("properties") if isinstance(data, dict) else None)
        if fields is None:
            return 400, error_body("Invalid input: properties must be an object", "VALIDATION_ERROR")
        problem = self._problem(media_type, fields, crm=True)
        if problem:
            return 400, error_body(problem, "VALIDATION_ERROR")
        return 201, self.add(media_type, fields).crm()

    def _crm_batch_create(
        self, params: Mapping[str, str], _: Mapping[str, str], data: Any
    ) -> tuple[int, dict[str, Any]]:
        media_type = self._crm_type(params)
        if not isinstance(media_type, str):
            return media_type
        inputs = data.get("inputs") if isinstance(data, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return 400, error_body("Invalid input: 'inputs' must be a non-empty list", "VALIDATION_ERROR")
        if len(inputs) > MAX_BATCH:
            return 400, error_body(f"Batch size of {len(inputs)} exceeds the limit of {MAX_BATCH}", "VALIDATION_ERROR")
        started = _now()
        results: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for item in inputs:
            fields = self._crm_fields(item.get("properties") if isinstance(item, dict) else None)
            trace = item.get("objectWriteTraceId") if isinstance(item, dict) else None
            problem = "properties must be an object" if fields is None else self._problem(media_type, fields, crm=True)
            if problem or fields is None:
                context = {"objectWriteTraceId": [str(trace)]} if trace else {}
                if fields and fields.get("externalId"):
                    context["hs_external_id"] = [str(fields["externalId"])]
                errors.append({"status": "error", "category": "VALIDATION_ERROR", "message": problem,
                               "context": context, "errors": [], "links": {}})  # fmt: skip
                continue
            result = self.add(media_type, fields).crm()
            if trace:
                result["objectWriteTraceId"] = str(trace)
            results.append(result)
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": _now()}
        if not errors:
            return 201, body
        body["numErrors"], body["errors"] = len(errors), errors
        return 207, body

    def _crm_get(self, params: Mapping[str, str], query: Mapping[str, str], _: Any) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(int(params["id"]))
        if obj is None or obj.media_type != self.media_type_of(params["type"]):
            return 404, error_body(f"Object {params['id']} was not found", "OBJECT_NOT_FOUND")
        return 200, obj.crm([p for p in query.get("properties", "").split(",") if p] or None)

    def _crm_patch(self, params: Mapping[str, str], _: Mapping[str, str], data: Any) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(int(params["id"]))
        if obj is None or obj.media_type != self.media_type_of(params["type"]):
            return 404, error_body(f"Object {params['id']} was not found", "OBJECT_NOT_FOUND")
        fields = self._crm_fields(data.get("properties") if isinstance(data, dict) else None)
        if fields is None:
            return 400, error_body("Invalid input: properties must be an object", "VALIDATION_ERROR")
        self._update(obj, fields)
        return 200, obj.crm()

    def _update(self, obj: MediaObject, fields: Mapping[str, Any]) -> None:
        old = obj.fields.get("externalId")
        obj.fields.update({k: v for k, v in fields.items() if k in OBJECT_FIELDS})
        obj.updated_at = _now()
        new = obj.fields.get("externalId")
        if new != old:
            if old:
                self.by_external[str(old)].remove(obj.id)
            if new:
                self.by_external.setdefault(str(new), []).append(obj.id)

    def _objects_create(self, _: Mapping[str, str], __: Mapping[str, str], data: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(data, dict) or data.get("mediaType") not in MEDIA_TYPES:
            message = "mediaType is required: one of " + ", ".join(MEDIA_TYPES)
            return 400, error_body(message, "VALIDATION_ERROR")
        fields = {k: data.get(k) for k in OBJECT_FIELDS}
        if fields["duration"] is not None and not isinstance(fields["duration"], int):
            return 400, error_body("duration must be an integer (milliseconds)", "VALIDATION_ERROR")
        problem = self._problem(data["mediaType"], fields, crm=False)
        if problem:
            return 400, error_body(problem, "VALIDATION_ERROR")
        return 200, self.add(data["mediaType"], fields).dated()

    def _objects_list(self, params: Mapping[str, str], query: Mapping[str, str], _: Any) -> tuple[int, dict[str, Any]]:
        media_type = params["a"]
        if media_type not in MEDIA_TYPES:
            return 400, error_body(f"Unknown media type {media_type}", "VALIDATION_ERROR")
        return 200, _page(self.ids_of(media_type), query, 20, lambda i: self.objects[i].dated())

    def _objects_get(self, params: Mapping[str, str], _: Mapping[str, str], __: Any) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(int(params["b"]))
        if obj is None or obj.media_type != params["a"]:
            return 404, error_body(f"Object {params['b']} was not found", "OBJECT_NOT_FOUND")
        return 200, obj.dated()

    def _objects_patch(self, params: Mapping[str, str], _: Mapping[str, str], data: Any) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(int(params["a"]))
        if obj is None:
            return 404, error_body(f"Object {params['a']} was not found", "OBJECT_NOT_FOUND")
        if not isinstance(data, dict) or data.get("mediaType") != obj.media_type:
            return 400, error_body(f"mediaType is required and must be {obj.media_type}", "VALIDATION_ERROR")
        self._update(obj, {k: v for k, v in data.items() if k in OBJECT_FIELDS})
        return 200, obj.dated()

    def _definition(self, params: Mapping[str, str], _: Mapping[str, str], __: Any) -> tuple[int, dict[str, Any]]:
        media_type = params["type"]
        if media_type not in MEDIA_TYPES or int(params["app"]) != self.app_id:
            return 404, error_body(f"No object definition for {media_type} of app {params['app']}", "OBJECT_NOT_FOUND")
        body = {"objectTypeId": self.type_id(media_type), "objectTypeName": self.type_name(media_type),
                "properties": [], "propertyGroups": []}  # fmt: skip
        return 200, body


def _page(
    ids: list[int], query: Mapping[str, str], default: int, render: Callable[[int], dict[str, Any]]
) -> dict[str, Any]:
    """One page and, when more follow, ``paging.next.after`` (an opaque offset)."""
    try:
        limit = min(MAX_PAGE, max(1, int(query.get("limit", default))))
        start = max(0, int(query.get("after", "0")))
    except ValueError:
        limit, start = default, 0
    body: dict[str, Any] = {"results": [render(i) for i in ids[start : start + limit]]}
    if start + limit < len(ids):
        after = str(start + limit)
        body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
    return body


def sample_objects() -> list[dict[str, Any]]:
    """The objects the bundled samples' ``media_bridge_id`` values name (1001–1499: sample_data/generate.py
    writes media N as id N + 1000): media that existed in the account before the import. The demo and
    the tests seed them; the samples' other media (``external_id`` vid-N) are created by the import."""
    return [{"id": n + 1000, "mediaType": "VIDEO", "title": f"Episode {n}"} for n in range(1, 500)]


def sample_external_objects() -> list[dict[str, Any]]:
    """The samples' ``external_id`` media (vid-1 … vid-499) as objects of the account: for tests whose
    subject is the events alone (pacing, faults), so that they need no media sync."""
    return [{"externalId": f"vid-{n}", "mediaType": "VIDEO", "title": f"Episode {n}"} for n in range(1, 500)]


def fixture_objects() -> list[dict[str, Any]]:
    """The objects the simulator's own tests name in hand-written events (externalId video-1 / media-9 / v,
    mediaBridgeId 3, 9, 99): seeded next to ``sample_objects`` by the test fixtures."""
    named = [{"externalId": ext, "mediaType": "VIDEO", "title": ext} for ext in ("video-1", "media-9", "v")]
    return named + [{"id": i, "mediaType": "VIDEO", "title": f"Media {i}"} for i in (3, 9, 99)]
