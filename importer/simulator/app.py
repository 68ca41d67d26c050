"""The simulated HubSpot: routing and the order in which a request meets each rule.

For the API endpoints the order is: latency → (client still there?) → auth (401/403) → 429 storm →
rate limits (429) → one fault draw (drop / 5xx / 423 / 477 / slow) → validation (400/415) → 200.
An event is recorded only on the last step, in the same event-loop turn that writes the 200,
so every fault, every 4xx and every client that left early leave the record untouched.

What a client can rely on:
- a 200 means the event was recorded exactly once; any other status means it was not;
- a dropped connection means it was not recorded;
- a slow answer is processed only after ``slow_ms``, and only if the client is still connected:
  a client that timed out and closed its connection before then left nothing recorded. (If it is
  still connected it gets the ordinary 200/400 late, and a 200 was recorded.)
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from importer.clock import SYSTEM, Clock
from importer.simulator import faults as f
from importer.simulator import media as m
from importer.simulator.auth import Auth, correlation_id, error_body
from importer.simulator.config import (
    CONTACTS_READ,
    MEDIA_BRIDGE_READ,
    MEDIA_BRIDGE_WRITE,
    SimulatorConfig,
    apply_changes,
    config_to_json,
)
from importer.simulator.httpserver import Request, Response, json_response
from importer.simulator.limits import DAILY, AccountLimits
from importer.simulator.store import EventStore, Stats
from importer.simulator.validation import (
    MEDIA_PLAYED,
    MEDIA_PLAYED_PERCENT,
    FieldError,
    batch_read_problems,
    echo_event,
    event_key,
    validate_event,
)

MEDIA_PLAYED_PATH = "/media-bridge/v1/events/media-played"
MEDIA_PLAYED_PERCENT_PATH = "/media-bridge/v1/events/media-played-percent"
CONTACTS_BATCH_READ_PATH = "/crm/v3/objects/contacts/batch/read"
OAUTH_TOKEN_PATH = "/oauth/v1/token"
_BATCH_READ = "contacts-batch-read"
_OAUTH = "oauth"
# path -> (route name, scope it needs)
API_ROUTES: dict[str, tuple[str, str]] = {
    MEDIA_PLAYED_PATH: (MEDIA_PLAYED, MEDIA_BRIDGE_WRITE),
    MEDIA_PLAYED_PERCENT_PATH: (MEDIA_PLAYED_PERCENT, MEDIA_BRIDGE_WRITE),
    CONTACTS_BATCH_READ_PATH: (_BATCH_READ, CONTACTS_READ),
    OAUTH_TOKEN_PATH: (_OAUTH, ""),
}
_GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><h1>{0}</h1></body></html>"


def _validation_failed(errors: list[FieldError]) -> dict[str, object]:
    return error_body(
        "Invalid input: " + "; ".join(e.message for e in errors),
        "VALIDATION_ERROR",
        errors=[e.to_json() for e in errors],
    )


class SimulatorApp:
    """All simulator state. Lives on one event loop; nothing here is thread-safe by design."""

    def __init__(
        self,
        config: SimulatorConfig,
        clock: Clock = SYSTEM,
        access_log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config.check()
        self.clock = clock
        self.limiter = AccountLimits(
            config.burst, config.window_ms, config.daily_limit, clock.monotonic, wall=clock.time,
            background_load=config.background_load, timezone=config.timezone,
        )  # fmt: skip
        self.faults = f.FaultInjector(config, clock.monotonic)
        self.auth = Auth(config, clock.monotonic)
        self.store = EventStore(config.record_path)
        self.media = m.MediaStore(config.app_id)
        self.stats = Stats()
        self.access_log = access_log

    # ---- entry point -------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response | None:
        path = request.path
        if path.startswith("/__sim/"):
            return self._inspect(request, path)
        self.stats.enter()
        response: Response | None = None
        try:
            response = await self._serve(request, path)
            return response
        finally:
            status = response.status if response is not None else None
            self.stats.leave(status)
            if self.access_log is not None:
                self.access_log(f"{request.method} {path} -> {status or 'no answer'}")

    async def _serve(self, request: Request, path: str) -> Response | None:
        route = API_ROUTES.get(path)
        media = m.route(request.method, path) if route is None else None
        if media is not None:  # media objects (importer.simulator.media): GET, POST and PATCH
            read = request.method == "GET"
            route = (media.name, MEDIA_BRIDGE_READ if read else MEDIA_BRIDGE_WRITE) if media.name else None
            if route is None:
                message = f"{request.method} is not allowed on {path}"
                return self._answer(405, error_body(message, "METHOD_NOT_ALLOWED"))
        if route is None:
            return self._answer(404, error_body(f"No such endpoint: {path}", "OBJECT_NOT_FOUND"))
        if request.method != "POST" and media is None:
            return self._answer(405, error_body(f"{request.method} is not allowed on {path}", "METHOD_NOT_ALLOWED"))
        delay = self.faults.latency_s()
        if delay:
            await self.clock.sleep(delay)
        if request.client_gone():
            self.stats.abandoned += 1
            return None
        name, scope = route
        if name == _OAUTH:
            return self._oauth(request)
        denied = self.auth.check(request.headers.get("authorization"), scope)
        if denied is not None:
            return self._answer(denied.status, denied.body)
        storm_left = self.faults.storm_left_s()
        if storm_left:
            self.stats.faults[f.STORM] += 1
            return self._too_many("TEN_SECONDLY_ROLLING", retry_after=max(1, math.ceil(storm_left)))
        policy = self.limiter.acquire()
        if policy is not None:
            return self._too_many(policy)
        fault = self.faults.draw()
        if fault is not None:
            self.stats.faults[fault.kind] += 1
            if fault.kind == f.DROP:
                return None
            if fault.kind != f.SLOW:
                return self._fault_answer(fault.status)
            await self.clock.sleep(self.config.slow_ms / 1000)
            if request.client_gone():
                self.stats.abandoned += 1
                return None
        if media is not None:
            return self._media(media, request)
        return self._process(name, request)

    # ---- answers -----------------------------------------------------------------------------
    def _answer(
        self, status: int, payload: Mapping[str, object], extra: list[tuple[str, str]] | None = None
    ) -> Response:
        cid = payload.get("correlationId")
        headers = self.limiter.headers()
        if isinstance(cid, str):
            headers.append(("X-HubSpot-Correlation-Id", cid))
        if extra:
            headers.extend(extra)
        return json_response(status, payload, headers)

    def _too_many(self, policy: str, retry_after: int | None = None) -> Response:
        self.stats.rate_limited[policy] += 1
        limit_name = "daily" if policy == DAILY else policy.lower()
        body = {
            "status": "error",
            "message": f"You have reached your {limit_name} limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id(),
            "policyName": policy,
        }
        extra = []
        if self.config.retry_after_on_429:
            seconds = retry_after if retry_after is not None else self.limiter.retry_after_s(policy)
            extra.append(("Retry-After", str(seconds)))
        return self._answer(429, body, extra)

    def _fault_answer(self, status: int) -> Response:
        extra: list[tuple[str, str]] = []
        if status in (423, 477) and self.config.fault_retry_after_s is not None:
            extra.append(("Retry-After", str(self.config.fault_retry_after_s)))
        if status in (502, 504):
            # Gateways answer HTML, not HubSpot JSON: a client must cope with both.
            title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
            response = Response(status, _GATEWAY_PAGE.format(title).encode(), self.limiter.headers())
            response.content_type = "text/html"
            return response
        messages = {
            500: ("internal error", "INTERNAL_ERROR"),
            503: ("Service Unavailable", "SERVICE_UNAVAILABLE"),
            423: ("The resource is locked; wait at least 2 seconds and retry.", "LOCKED"),
            477: ("A migration is in progress; retry later.", "MIGRATION_IN_PROGRESS"),
        }
        message, category = messages[status]
        return self._answer(status, error_body(message, category), extra)

    # ---- endpoints ---------------------------------------------------------------------------
    def _oauth(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        status, body = self.auth.grant(form)
        if status == 200:
            self.stats.tokens_issued += 1
        return self._answer(status, body)

    def _process(self, name: str, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if "application/json" not in content_type.lower():
            body = error_body(f"Content type '{content_type}' not supported; send application/json", "VALIDATION_ERROR")
            return self._answer(415, body)
        try:
            data: Any = json.loads(request.body)
        except ValueError as exc:
            return self._answer(400, _validation_failed([FieldError(f"Invalid input JSON: {exc}", "INVALID_JSON", "")]))
        if name == _BATCH_READ:
            return self._batch_read(data)
        errors = validate_event(name, data)
        if errors:
            return self._answer(400, _validation_failed(errors))
        echo = echo_event(name, data, self.config.portal_id, self.config.app_id)
        if self.config.media_objects == "strict":
            found = self.media.find(data)
            if isinstance(found, str):
                field_name = "mediaBridgeId" if data.get("mediaBridgeId") is not None else "externalId"
                return self._answer(400, _validation_failed([FieldError(found, "MEDIA_NOT_FOUND", field_name)]))
            type_id = self.media.type_id(found.media_type)
            echo.update(mediaBridgeId=found.id, mediaBridgeObjectTypeId=type_id,
                        mediaBridgeObjectCoordinates=f"{self.config.portal_id}:{type_id}:{found.id}")  # fmt: skip
        self.store.add(name, data, echo, event_key(name, data))
        return self._answer(200, echo)

    def _media(self, route: m.Route, request: Request) -> Response:
        data: Any = None
        if request.method != "GET":
            if "application/json" not in request.headers.get("content-type", "").lower():
                return self._answer(
                    415, error_body("Content type not supported; send application/json", "VALIDATION_ERROR")
                )
            try:
                data = json.loads(request.body)
            except ValueError as exc:
                return self._answer(
                    400, _validation_failed([FieldError(f"Invalid input JSON: {exc}", "INVALID_JSON", "")])
                )
        status, body = self.media.handle(route, request.query, data)
        return self._answer(status, body)

    def _batch_read(self, data: object) -> Response:
        errors, ids, id_property = batch_read_problems(data)
        if errors:
            return self._answer(400, _validation_failed(errors))
        contacts = self.config.contacts
        emails_by_id = {str(cid): email for email, cid in contacts.items()}
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        results: list[dict[str, object]] = []
        missing: list[str] = []
        for raw in dict.fromkeys(ids):  # HubSpot answers each distinct input once
            if id_property == "email":
                email: str | None = raw.strip().lower()
                found = contacts.get(email) if email else None
                contact_id = None if found is None else str(found)
            else:
                email = emails_by_id.get(raw.strip())
                contact_id = raw.strip() if email is not None else None
            if contact_id is None or email is None:
                missing.append(raw)
                continue
            properties = {
                "email": email,
                "hs_object_id": contact_id,
                "createdate": now,
                "lastmodifieddate": now,
            }
            results.append(
                {
                    "id": contact_id,
                    "properties": properties,
                    "createdAt": now,
                    "updatedAt": now,
                    "archived": False,
                }
            )
        body: dict[str, object] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        if not missing:
            return self._answer(200, body)
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return self._answer(207, body)

    # ---- /__sim/ -----------------------------------------------------------------------------
    def _inspect(self, request: Request, path: str) -> Response:
        key = (request.method, path.rstrip("/"))
        try:
            if key == ("GET", "/__sim/events"):
                events, next_since = self.store.query(request.query)
                return json_response(200, {"events": events, "next": next_since, "total": len(self.store)})
            if key == ("GET", "/__sim/media"):
                return json_response(200, self.media.to_json(request.query))
            if key == ("POST", "/__sim/media"):
                return json_response(200, self._seed_media(json.loads(request.body or b"{}")))
            if key == ("GET", "/__sim/stats"):
                return json_response(200, self.stats_json())
            if key == ("POST", "/__sim/reset"):
                self.reset()
                return json_response(200, {"reset": True})
            if key == ("GET", "/__sim/config"):
                return json_response(200, config_to_json(self.config))
            if key == ("POST", "/__sim/config"):
                changes = json.loads(request.body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("the body must be a JSON object of settings")
                self.reconfigure(changes)
                return json_response(200, config_to_json(self.config))
        except ValueError as exc:
            return json_response(400, {"status": "error", "message": str(exc)})
        return json_response(404, {"status": "error", "message": f"no inspection endpoint {request.method} {path}"})

    def _seed_media(self, body: Any) -> dict[str, object]:
        """``{"objects": [...]}`` adds objects that already exist; ``{"refuse": {externalId: message}}``
        makes creates of those externalIds fail (a 207 partial in a batch)."""
        if not isinstance(body, dict) or not set(body) <= {"objects", "refuse"}:
            raise ValueError('expected {"objects": [{"mediaType": ..., ...}], "refuse": {"externalId": "message"}}')
        added = self.media.seed(list(body.get("objects") or []))
        refuse = body.get("refuse") or {}
        if not isinstance(refuse, dict):
            raise ValueError("refuse must map externalIds to messages")
        for ext, message in refuse.items():  # null: creates of that externalId succeed again
            if message is None:
                self.media.refused.pop(str(ext), None)
            else:
                self.media.refused[str(ext)] = str(message)
        return {"added": added, "total": len(self.media.objects)}

    def stats_json(self) -> dict[str, object]:
        return self.stats.to_json(self.store, self.limiter.daily_used, self.limiter.window_used)

    def reset(self) -> None:
        """Clear events, stats, the burst window and the daily quota; restart the fault sequence.
        Media objects stay (account data, like the contacts); ``media.reset()`` empties them."""
        self.store.reset()
        self.media.requests.clear()  # the account's media objects stay, like its contacts
        self.stats.reset()
        self.limiter.reset()
        self.faults.reset()

    def reconfigure(self, changes: Mapping[str, object]) -> None:
        new = apply_changes(self.config, changes)
        self.config = new
        self.limiter.reconfigure(new.burst, new.window_ms, new.daily_limit, new.background_load, new.timezone)
        self.faults.reconfigure(
            new, reseed="seed" in changes, restart_storms=any(k.startswith("storm_") for k in changes)
        )
        self.auth.config = new

    def close(self) -> None:
        self.store.close()
