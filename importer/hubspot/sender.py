"""The sender: one media-played event per request, paced, retried, classified.

HubSpot answers are classified in one place (``classify``):

- 2xx → sent (a body that does not echo the event is counted as unconfirmed)
- 400 and other 4xx → that event failed for good; HubSpot's message, category
  and correlationId are kept
- 401 → refresh an OAuth token once, then ``AuthError``; 403 → ``ScopeError``;
  404 → ``EndpointError``: the run stops, nothing is marked failed for it
- 429 → pacing, not failure: wait for the window (or Retry-After) and send again,
  never counted against ``max_attempts``, bounded only by ``max_seconds``; a
  DAILY 429 stops the run (or, with ``wait_for_quota``, waits for the reset)
- 423, 477, 5xx, dropped connections → retried with full-jitter exponential
  backoff, bounded by attempts and time
- no answer in time → the request may have been processed: ``possibly_sent``
  (``on_timeout="hold"``, the default) or sent again (``"retry"``)
- no connection at all (refused, DNS, TLS, connect timeout) → retried while the
  host may come back; 10 failures in a row or 30 s without an answer stop the
  run with ``Unreachable``, nothing marked failed

httpx exceptions are converted to importer errors here and nowhere else. All
requests share one ``httpx.AsyncClient`` on httpx's own transport (proxies from
the environment, TLS verification, HTTP/2 with ``http2=True`` where h2 is
installed), at most ``concurrency`` connections.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import random
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from importer.clock import SYSTEM, Clock, format_duration
from importer.errors import (
    AnswerTimeout,
    AuthError,
    ConfigError,
    ConnectionFailed,
    EndpointError,
    Interrupted,
    NetworkError,
    QuotaExhausted,
    RateLimited,
    ScopeError,
    ServerError,
    TerminalError,
    TransientError,
    Unreachable,
    redact,
)
from importer.hubspot.auth import Credentials, RefreshFailed
from importer.hubspot.pacing import DailyQuota, RateLimiter

log = logging.getLogger("media_import")
STOPPED_BEFORE = "the run stopped before this event was sent"  # also the error of the events a stop left

PLAYED_PATH = "/media-bridge/v1/events/media-played"
PERCENT_PATH = "/media-bridge/v1/events/media-played-percent"
DEFAULT_BASE_URL = "https://api.hubapi.com"
_TRANSIENT = {423, 477, 500, 502, 503, 504, 521, 523, 524}
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
ON_TIMEOUT = ("hold", "retry")
DEFAULT_TIMEOUT_S = 60.0  # HubSpot answers in well under a second, but slow spells take tens of seconds


@dataclass
class SendStats:
    """Counters shared by every request of a run."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    unconfirmed: int = 0
    in_flight: int = 0
    retrying: int = 0
    timed_out: int = 0  # requests that went out and got no answer in time
    connection_errors: int = 0
    quota_waits: int = 0


@dataclass
class Outcome:
    """How one event ended: ``sent``, ``failed`` (``transient`` when retries ran out), or
    ``possibly_sent`` (its request got no answer in time and it is held, not sent again)."""

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


class _Reachability:
    """Connection failures in a row, across every request: a dead host stops the run quickly."""

    def __init__(self, clock: Clock, max_failures: int = 10, max_seconds: float = 30.0) -> None:
        self._clock = clock
        self.max_failures = max_failures
        self.max_seconds = max_seconds
        self.failures = 0
        self._since: float | None = None

    def answered(self) -> None:
        self.failures = 0
        self._since = None

    def failed(self, where: str, reason: str) -> None:
        """Count one failure; ``Unreachable`` once there were too many, or for too long."""
        now = self._clock.monotonic()
        if self._since is None:
            self._since = now
        self.failures += 1
        if self.failures >= self.max_failures or now - self._since >= self.max_seconds:
            raise Unreachable(
                f"cannot connect to {where}: {reason}",
                hint="check --base-url, the network and any proxy (HTTPS_PROXY); nothing was marked failed: "
                "run the same command again once the host answers",
            )


def connect_reason(exc: BaseException) -> str:
    """'connection refused', 'name or service not known', a TLS reason: what the system said."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({current.verify_message})"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({current.reason or current})"
        if isinstance(current, OSError) and current.errno is not None:
            # asyncio words a refusal "Connect call failed (...)": the errno's own text says more.
            text = (current.strerror if current.errno < 0 else None) or os.strerror(current.errno)
            return text[:1].lower() + text[1:]
        current = current.__cause__ or current.__context__
    return redact(str(exc)) or type(exc).__name__


class Sender:
    """Posts events through one pooled ``httpx.AsyncClient``.

    The public request API (``send``, ``exchange``, ``post``, ``classify``, ``stats``,
    ``aclose``) is what the run loop, contacts and media objects use.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        limiter: RateLimiter,
        quota: DailyQuota,
        *,
        concurrency: int = 8,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        seed: int | None = None,
        http2: bool = False,
        on_timeout: str = "hold",
        wait_for_quota: bool = False,
        clock: Clock = SYSTEM,
    ) -> None:
        if on_timeout not in ON_TIMEOUT:
            raise ConfigError(f"on_timeout must be one of {', '.join(ON_TIMEOUT)}, got {on_timeout!r}")
        self.base_url = check_base_url(base_url)
        self.credentials = credentials
        self.limiter = limiter
        self.quota = quota
        self.retry = retry or RetryPolicy()
        self.stats = SendStats()
        self.on_timeout = on_timeout
        self.wait_for_quota = wait_for_quota
        self.clock = clock
        credentials.clock = clock
        # Called with a short text when sending pauses or resumes for a long time (the quota wait).
        self.on_notice: Callable[[str], None] | None = None
        self._rng = random.Random(seed)
        self._reach = _Reachability(clock)
        self._stopping = asyncio.Event()
        self._quota_wait = asyncio.Lock()
        self._answer = asyncio.Event()  # set (and replaced) when a request of the quota ends
        self._slots = asyncio.Semaphore(concurrency)  # the pool bounds real connections; this any transport
        self._urls: dict[str, httpx.URL] = {}  # absolute, parsed once: httpx parses a relative one per request
        parts = urlsplit(self.base_url)
        self._where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        if http2 and importlib.util.find_spec("h2") is None:
            raise ConfigError("--http2 needs the h2 package", hint="pip install 'httpx[http2]', or leave out --http2")
        self.client = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            http2=http2,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s), pool=None),
            # One more than the workers: an OAuth refresh never waits behind them.
            limits=httpx.Limits(max_connections=concurrency + 1, max_keepalive_connections=concurrency + 1),
            headers={"User-Agent": "media-import/0.1", "Content-Type": "application/json"},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def stop(self) -> None:
        """The run is stopping: waits (quota, backoff, 429 pauses) end with ``Interrupted`` at once."""
        self._stopping.set()

    async def _until(self, waited: Coroutine[Any, Any, Any] | None) -> None:
        """Await ``waited`` (None: nothing), unless the run stops first: then ``Interrupted``."""
        if waited is not None:
            done = asyncio.ensure_future(waited)
            stopper = asyncio.ensure_future(self._stopping.wait())
            try:
                await asyncio.wait({done, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                done.cancel()
                stopper.cancel()
        if self._stopping.is_set():
            raise Interrupted(STOPPED_BEFORE, hint="run the same command again")

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` of the sender's clock, unless the run stops first."""
        await self._until(self.clock.sleep(seconds) if seconds > 0 else None)

    async def _wait_for_quota_reset(self) -> None:
        """Sleep until the daily quota resets; the first task waits, the others wait for it."""
        async with self._quota_wait:
            if self._stopping.is_set():
                await self._pause(0)  # the run stopped while this task queued for the wait: Interrupted
            if not self.quota.exhausted:
                return  # another task waited meanwhile
            self.stats.quota_waits += 1
            reset_at = self.quota.reset_at if self.quota.reset_at is not None else self.quota.next_reset()
            text = f"daily quota used: waiting until {self.quota.reset_text()}"
            log.warning(text)
            if self.on_notice is not None:
                self.on_notice(text)
            # A second past midnight: the account's clock and ours need not agree to the second.
            await self._pause(reset_at - self.clock.time() + 1.0)
            self.quota.roll_over()
            self.credentials.expire()  # an OAuth token from before the wait has expired by now
            log.warning("daily quota reset: sending again")
            if self.on_notice is not None:
                self.on_notice("sending")

    def _request_ended(self) -> None:
        """Wake the tasks waiting for an answer of the quota's requests in flight (``_book``)."""
        self._answer.set()
        self._answer = asyncio.Event()

    async def _book(self) -> int:
        """A rate-limiter slot and one request of the daily quota, claimed. When only requests in
        flight hold what is left above the reserve, wait for their answers rather than stop: HubSpot
        may have counted some of them already. ``QuotaExhausted`` once only the reserve is left
        (or, with ``wait_for_quota``, a wait until the reset)."""
        while True:
            try:
                self.quota.check()
            except QuotaExhausted:
                if self.quota.held_in_flight:
                    await self._until(self._answer.wait())  # a request in flight ends, its headers seen
                elif self.wait_for_quota:
                    await self._wait_for_quota_reset()
                else:
                    raise
                continue
            ticket = await self.limiter.acquire()
            try:
                # Claimed after the wait for a slot: answers that arrived meanwhile may have used the quota up.
                self.quota.claim()
                return ticket
            except QuotaExhausted:
                self.limiter.done(ticket)  # no request made: back to the check above

    async def post(self, path: str, content: bytes, method: str = "POST") -> tuple[httpx.Response, str]:
        """One paced request and the token it used; transport failures come back as ``NetworkError``."""
        ticket = await self._book()
        answered = counted = False
        try:
            token = await self.credentials.token(self.client)
            self.stats.requests += 1
            self.stats.in_flight += 1
            counted = True
            auth = {"Authorization": f"Bearer {token}"}
            async with self._slots:
                if method == "POST":
                    url = self._urls.get(path) or self._urls.setdefault(path, httpx.URL(self.base_url + path))
                    response = await self.client.post(url, content=content, headers=auth)
                else:  # media object listings and updates: paths that change with every page or object
                    response = await self.client.request(method, path, content=content or None, headers=auth)
            answered = True
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
            self.stats.connection_errors += 1
            reason = connect_reason(exc) if not isinstance(exc, httpx.ConnectTimeout) else "connection timed out"
            self._reach.failed(self._where, reason)
            raise ConnectionFailed(f"cannot connect to {self._where}: {reason}") from None
        except httpx.ReadTimeout:
            raise AnswerTimeout("no answer within the timeout (it may have arrived)") from None
        except httpx.TimeoutException as exc:
            raise NetworkError(f"timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise NetworkError(f"connection error ({type(exc).__name__})") from None
        finally:
            self.quota.release(answered)
            if counted:
                self.stats.in_flight -= 1
            if not answered:  # no answer to learn from: the slot still counts one window from now
                self.limiter.done(ticket)
                self._request_ended()
        self._reach.answered()
        # Learn the window from the headers before booking this answer's slot in it.
        self.limiter.observe(response.headers, ticket)
        self.limiter.done(ticket)
        self.quota.observe(response.headers)
        self._request_ended()
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
        started = self.clock.monotonic()
        tries = 0
        attempts = 0  # the tries that count against max_attempts: not 429s, not connection failures
        refreshed = False
        token: str | None = None
        while True:
            tries += 1
            try:
                response, token = await self.post(path, payload, method)
                outcome = self.classify(response, expect)
                outcome.attempts = tries
                return outcome, (response if outcome.status == "sent" else None)
            except RefreshFailed:
                raise  # the refresh itself failed: asking again would fail the same way
            except AuthError:
                if self.credentials.can_refresh and not refreshed:
                    refreshed = True
                    await self.credentials.refresh(self.client, stale=token)
                    continue
                raise
            except QuotaExhausted:
                if not self.wait_for_quota:
                    raise
                await self._wait_for_quota_reset()
            except RateLimited as exc:
                # Pacing, not failure: the limiter holds the window shut; wait in line for it.
                elapsed = self.clock.monotonic() - started
                if elapsed >= self.retry.max_seconds:
                    raise TerminalError(
                        f"HubSpot answered 429 (rate limited) for {format_duration(elapsed)} to one event",
                        hint="another integration may be using the account's whole limit; run the same command "
                        "again later (or raise --max-retry-time)",
                    ) from None
                await self._retrying(exc.retry_after or 0)
            except ConnectionFailed:
                # Never reached HubSpot: retried until the host answers or ``Unreachable`` stops the run.
                await self._retrying(self.retry.delay(min(self._reach.failures, 6), self._rng))
            except TransientError as exc:
                attempts += 1
                if isinstance(exc, AnswerTimeout):
                    self.stats.timed_out += 1
                    if self.on_timeout == "hold":
                        message = f"{exc.message}; held, not sent again (--on-timeout hold)"
                        return Outcome("possibly_sent", None, message, tries, transient=True), None
                elapsed = self.clock.monotonic() - started
                if attempts >= self.retry.max_attempts or elapsed >= self.retry.max_seconds:
                    message = f"gave up after {attempts} attempts: {exc.message}"
                    return Outcome("failed", exc.http_status, message, tries, transient=True), None
                delay = self.retry.delay(attempts, self._rng)
                await self._retrying(max(delay, exc.retry_after or 0))

    async def _retrying(self, seconds: float) -> None:
        self.stats.retries += 1
        self.stats.retrying += 1
        try:
            await self._pause(seconds)
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
            path = response.request.url.path
            raise EndpointError(f"HubSpot answered 404 for {path}: {message}", hint=_not_found_hint(path))
        return Outcome("failed", code, message)


def _not_found_hint(path: str) -> str:
    """What a 404 most likely means, by the route that answered it."""
    if path.startswith("/media-bridge/") and "/objects" in path:
        return ("this account may not have the dated media objects API (media.api: objects); use the CRM "
                "route instead: media.api: crm, with the object types of your Media Bridge app")  # fmt: skip
    return f"the base URL looks wrong: it should be {DEFAULT_BASE_URL} (or the simulator's URL)"


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
