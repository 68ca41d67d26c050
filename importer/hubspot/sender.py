"""The sender: one media-played event per request, paced, retried, classified.

HubSpot answers are classified in one place (``classify``):

- 2xx → sent (a body that does not echo the event is counted as unconfirmed)
- 400 and other 4xx → that event failed for good; HubSpot's message, category
  and correlationId are kept
- 401 → refresh an OAuth token once, then ``AuthError``; 403 → ``ScopeError``;
  404 → ``EndpointError``: the run stops, nothing is marked failed for it
- 429 → wait for the window (or Retry-After) and retry; a DAILY 429 stops the run
- 423, 477, 5xx, timeouts, connection errors → retried with full-jitter
  exponential backoff, bounded by attempts and time

httpx exceptions are converted to ``NetworkError`` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from importer.errors import (
    AuthError,
    ConfigError,
    EndpointError,
    NetworkError,
    RateLimited,
    ScopeError,
    ServerError,
    TransientError,
    redact,
)
from importer.hubspot.auth import Credentials, RefreshFailed
from importer.hubspot.pacing import DailyQuota, RateLimiter
from importer.hubspot.transport import StreamTransport, proxies_configured

PLAYED_PATH = "/media-bridge/v1/events/media-played"
PERCENT_PATH = "/media-bridge/v1/events/media-played-percent"
DEFAULT_BASE_URL = "https://api.hubapi.com"
_TRANSIENT = {423, 477, 500, 502, 503, 504, 521, 523, 524}
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class SendStats:
    """Counters shared by every request of a run."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    unconfirmed: int = 0
    in_flight: int = 0
    retrying: int = 0


@dataclass
class Outcome:
    """How one event ended: ``sent`` or ``failed`` (``transient`` when retries ran out)."""

    status: str
    http_status: int | None = None
    error: str | None = None
    attempts: int = 0
    transient: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_seconds: float = 300.0
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2^(attempt-1))]."""
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


def check_base_url(url: str) -> str:
    """Refuse plain http to anything but loopback: the token would travel in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url {url!r} is not an http(s) URL", hint=f"e.g. {DEFAULT_BASE_URL}")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
        raise ConfigError(
            f"refusing plain http to {parts.hostname}: the token would be sent unencrypted",
            hint="use https, or a loopback address (127.0.0.1) for the local simulator",
        )
    return url.rstrip("/")


def _hubspot_error(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """HubSpot's message plus category and correlationId, from an error body (every field optional)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or response.reason_phrase or f"HTTP {response.status_code}")
    parts = [message]
    if body.get("category"):
        parts.append(f"category={body['category']}")
    if body.get("correlationId"):
        parts.append(f"correlationId={body['correlationId']}")
    return redact("; ".join(parts)), body


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Sender:
    """Posts events through one pooled ``httpx.AsyncClient``."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        limiter: RateLimiter,
        quota: DailyQuota,
        *,
        concurrency: int = 8,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        seed: int | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self.credentials = credentials
        self.limiter = limiter
        self.quota = quota
        self.retry = retry or RetryPolicy()
        self.stats = SendStats()
        self._rng = random.Random(seed)

        # One single-connection client per concurrent request, handed out from a queue:
        # httpcore's shared pool scans every connection for every request, which costs
        # more CPU than the request itself at high concurrency.
        tls = ssl.create_default_context()  # loading CA certificates once, not per client
        if transport is None and not proxies_configured():
            transport = StreamTransport(tls)

        def make_client(connections: int) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                base_url=self.base_url,
                transport=transport,
                verify=tls,
                timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
                limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
                headers={"User-Agent": "media-import/0.1", "Content-Type": "application/json"},
            )

        self.client = make_client(2)  # OAuth refreshes and one-off calls
        self._urls: dict[str, httpx.URL] = {}  # absolute URLs, parsed once: httpx re-parses relative ones
        self._all_clients = [make_client(1) for _ in range(concurrency)]
        self._clients: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in self._all_clients:
            self._clients.put_nowait(client)

    async def aclose(self) -> None:
        for client in [self.client, *self._all_clients]:
            await client.aclose()

    async def post(self, path: str, content: bytes, method: str = "POST") -> tuple[httpx.Response, str]:
        """One paced request and the token it used; transport failures come back as ``NetworkError``."""
        ticket = await self.limiter.acquire()
        answered = claimed = False
        client: httpx.AsyncClient | None = None
        try:
            # Claimed after the wait for a slot: answers that arrived meanwhile may have used the quota up.
            self.quota.claim()
            claimed = True
            token = await self.credentials.token(self.client)
            client = await self._clients.get()
            self.stats.requests += 1
            self.stats.in_flight += 1
            if method == "POST":
                url = self._urls.get(path) or self._urls.setdefault(path, httpx.URL(self.base_url + path))
            else:  # media object listings and updates: paths that change with every page or object
                url = httpx.URL(self.base_url + path)
            auth = {"Authorization": f"Bearer {token}"}
            response = await client.request(method, url, content=content or None, headers=auth)
            answered = True
        except httpx.TimeoutException as exc:
            raise NetworkError(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise NetworkError(f"connection error ({type(exc).__name__})") from None
        finally:
            if claimed:
                self.quota.release()
            if client is not None:
                self._clients.put_nowait(client)
                self.stats.in_flight -= 1
            if not answered:  # no answer to learn from: the slot still counts one window from now
                self.limiter.done(ticket)
        # Learn the window from the headers before booking this answer's slot in it.
        self.limiter.observe(response.headers)
        self.limiter.done(ticket)
        self.quota.observe(response.headers)
        return response, token

    async def send(
        self, payload: bytes, expect: tuple[str | None, str | None] | None = None, path: str = PLAYED_PATH
    ) -> Outcome:
        """Send one event until it is sent, fails for good, or the run must stop (raises)."""
        outcome, _ = await self.exchange(path, payload, expect)
        return outcome

    async def exchange(
        self,
        path: str,
        payload: bytes,
        expect: tuple[str | None, str | None] | None = None,
        method: str = "POST",
    ) -> tuple[Outcome, httpx.Response | None]:
        """POST until answered for good; the outcome and, when it is a 2xx, the answer."""
        started = time.monotonic()
        attempts = 0
        refreshed = False
        token: str | None = None
        while True:
            attempts += 1
            try:
                response, token = await self.post(path, payload, method)
                outcome = self.classify(response, expect)
                outcome.attempts = attempts
                return outcome, (response if outcome.status == "sent" else None)
            except RefreshFailed:
                raise  # the refresh itself failed: asking again would fail the same way
            except AuthError:
                if self.credentials.can_refresh and not refreshed:
                    refreshed = True
                    await self.credentials.refresh(self.client, stale=token)
                    continue
                raise
            except TransientError as exc:
                elapsed = time.monotonic() - started
                status = exc.http_status
                if attempts >= self.retry.max_attempts or elapsed >= self.retry.max_seconds:
                    message = f"gave up after {attempts} attempts: {exc.message}"
                    return Outcome("failed", status, message, attempts, transient=True), None
                self.stats.retries += 1
                self.stats.retrying += 1
                try:
                    if isinstance(exc, RateLimited):
                        # The limiter already holds the window shut; wait in line for it.
                        await asyncio.sleep(exc.retry_after or 0)
                    else:
                        delay = self.retry.delay(attempts, self._rng)
                        await asyncio.sleep(max(delay, exc.retry_after or 0))
                finally:
                    self.stats.retrying -= 1

    def classify(self, response: httpx.Response, expect: tuple[str | None, str | None] | None) -> Outcome:
        """Turn an answer into an outcome, or raise the error that says what to do next."""
        code = response.status_code
        if 200 <= code < 300:
            if expect is not None and not _echoes(response, expect):
                self.stats.unconfirmed += 1
            return Outcome("sent", code)
        message, body = _hubspot_error(response)
        if code == 429:
            self.stats.rate_limited += 1
            if str(body.get("policyName", "")).upper() == "DAILY":
                self.quota.exhausted_by_429()
            retry_after = _retry_after(response)
            self.limiter.backoff_window(retry_after)
            raise RateLimited(f"HTTP 429: {message}", retry_after=retry_after, http_status=code)
        if code in _TRANSIENT or code >= 500:
            retry_after = _retry_after(response)
            if code == 423:
                retry_after = max(2.0, retry_after or 0)
            raise ServerError(f"HTTP {code}: {message}", retry_after=retry_after, http_status=code)
        if code == 401:
            raise AuthError(
                f"HubSpot rejected the token (HTTP 401: {message})",
                hint="check HUBSPOT_ACCESS_TOKEN / --token-file; private app tokens start with 'pat-'",
            )
        if code == 403:
            scope = _missing_scope(body) or "media_bridge.write"
            raise ScopeError(
                f"the token lacks a scope (HTTP 403: {message})",
                hint=f"give the app the '{scope}' scope and use its new token",
            )
        if code == 404:
            raise EndpointError(
                f"HubSpot answered 404 for {response.request.url.path}: {message}",
                hint=f"the base URL looks wrong: it should be {DEFAULT_BASE_URL} (or the simulator's URL)",
            )
        return Outcome("failed", code, message)


def _echoes(response: httpx.Response, expect: tuple[str | None, str | None]) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and (body.get("sessionId"), body.get("state")) == expect


def _missing_scope(body: dict[str, Any]) -> str | None:
    for err in body.get("errors") or []:
        context = err.get("context") if isinstance(err, dict) else None
        if isinstance(context, dict):
            for key in ("requiredScopes", "requiredGranularScopes", "missingScopes"):
                scopes = context.get(key)
                if isinstance(scopes, list) and scopes:
                    return ", ".join(str(s) for s in scopes)
    text = json.dumps(body)
    for scope in ("media_bridge.write", "crm.objects.contacts.read"):
        if scope in text:
            return scope
    return None
