"""The sender against scripted HubSpot answers (``httpx.MockTransport``): one request per step."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from importer.clock import ScaledClock
from importer.errors import AuthError, EndpointError, ImporterError, QuotaExhausted, ScopeError, Unreachable
from importer.hubspot.auth import Credentials, OAuthApp
from importer.hubspot.pacing import DailyQuota, Rate, RateLimiter
from importer.hubspot.sender import Outcome, RetryPolicy, Sender

from .helpers import PLAYED, Script, echo, error, payload

BASE = "https://api.hubapi.com"
TOKEN = "pat-na1-unit-test-token"
FAST = RetryPolicy(max_attempts=4, max_seconds=60.0, base_delay=0.001, max_delay=0.005)
EXPECT = ("sess-1", "STARTED")


@dataclass
class Sent:
    outcome: Outcome | None
    error: ImporterError | None
    sender: Sender
    elapsed: float


def make_sender(
    script: Script,
    *,
    rate: Rate | None = None,
    quota: DailyQuota | None = None,
    credentials: Credentials | None = None,
    retry: RetryPolicy = FAST,
    concurrency: int = 1,
    limiter: RateLimiter | None = None,
    on_timeout: str = "hold",
) -> Sender:
    return Sender(
        BASE,
        credentials or Credentials(TOKEN),
        limiter or RateLimiter(rate),
        quota or DailyQuota(),
        concurrency=concurrency,
        retry=retry,
        transport=script.transport,
        seed=7,
        on_timeout=on_timeout,
    )


def send(script: Script, body: bytes | None = None, expect: tuple[str, str] | None = EXPECT, **kw: Any) -> Sent:
    """Send one event through a fresh sender; the outcome, or the error it raised."""

    async def main() -> Sent:
        sender = make_sender(script, **kw)
        started = time.monotonic()
        try:
            outcome = await sender.send(body or payload(), expect)
            return Sent(outcome, None, sender, time.monotonic() - started)
        except ImporterError as exc:
            return Sent(None, exc, sender, time.monotonic() - started)
        finally:
            await sender.aclose()

    return asyncio.run(main())


def oauth() -> Credentials:
    return Credentials(None, OAuthApp("client-1", "secret-1", "refresh-1"))


# ---- 2xx ----------------------------------------------------------------------------------------


def test_200_is_sent_with_the_payload_token_and_path() -> None:
    script = Script()
    result = send(script)
    assert result.outcome == Outcome("sent", 200, None, attempts=1, transient=False)
    [request] = script.requests
    assert request.method == "POST"
    assert str(request.url) == BASE + PLAYED
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.content == payload()
    stats = result.sender.stats
    assert (stats.requests, stats.retries, stats.rate_limited, stats.unconfirmed) == (1, 0, 0, 0)
    assert (stats.in_flight, stats.retrying) == (0, 0)


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={}),
        httpx.Response(200, text="OK"),
        httpx.Response(200, json=["sess-1", "STARTED"]),
        httpx.Response(200, json={"sessionId": "sess-2", "state": "STARTED"}),
        httpx.Response(200, json={"sessionId": "sess-1", "state": "VIEWED"}),
        httpx.Response(204),
    ],
    ids=["empty-object", "text", "list", "other-session", "other-state", "no-content"],
)
def test_a_2xx_that_does_not_echo_the_event_is_counted_unconfirmed(answer: httpx.Response) -> None:
    result = send(Script(answer))
    assert result.outcome is not None and result.outcome.status == "sent"
    assert result.sender.stats.unconfirmed == 1


def test_an_echoed_2xx_is_confirmed() -> None:
    result = send(Script(lambda r: echo(r, 200)))
    assert result.outcome == Outcome("sent", 200, attempts=1)
    assert result.sender.stats.unconfirmed == 0


# ---- terminal for the event ---------------------------------------------------------------------


def test_400_fails_the_event_keeping_message_category_and_correlation_id() -> None:
    body = {
        "status": "error",
        "message": "Invalid input: occurredTimestamp must be a number",
        "correlationId": "4c5b7f2e-1b2d-4f7a-9d55-0b6a1c2e3f40",
        "category": "VALIDATION_ERROR",
        "errors": [{"message": "must be a number", "code": "INVALID_INTEGER", "context": {}}],
    }
    script = Script(httpx.Response(400, json=body))
    result = send(script)
    outcome = result.outcome
    assert outcome is not None
    assert (outcome.status, outcome.http_status, outcome.attempts, outcome.transient) == ("failed", 400, 1, False)
    assert outcome.error is not None
    assert "Invalid input: occurredTimestamp must be a number" in outcome.error
    assert "VALIDATION_ERROR" in outcome.error
    assert "4c5b7f2e-1b2d-4f7a-9d55-0b6a1c2e3f40" in outcome.error
    assert len(script.requests) == 1  # never retried
    assert result.sender.stats.retries == 0


@pytest.mark.parametrize("status", [405, 409, 415, 422])
def test_other_4xx_fail_the_event_without_retry(status: int) -> None:
    script = Script(error(status, "nope"))
    result = send(script)
    assert result.outcome == Outcome("failed", status, "nope; correlationId=c0ffee00-0000-4000-8000-000000000001", 1)
    assert len(script.requests) == 1


def test_400_without_a_json_body_keeps_the_reason() -> None:
    result = send(Script(httpx.Response(400, text="<html>bad</html>")))
    assert result.outcome == Outcome("failed", 400, "Bad Request", 1)


# ---- terminal for the run -----------------------------------------------------------------------


def test_401_with_a_private_app_token_stops_the_run_after_one_request() -> None:
    script = Script(error(401, "The access token provided is invalid.", category="INVALID_AUTHENTICATION"))
    result = send(script)
    assert isinstance(result.error, AuthError)
    assert result.error.exit_code == 3
    assert "401" in result.error.message and "The access token provided is invalid." in result.error.message
    assert result.error.hint is not None and "HUBSPOT_ACCESS_TOKEN" in result.error.hint
    assert TOKEN not in result.error.message + result.error.hint
    assert len(script.requests) == 1
    assert script.token_requests == []


def test_401_with_oauth_refreshes_once_then_succeeds() -> None:
    creds = oauth()
    script = Script(error(401, "The OAuth token used to make this call expired 1 second(s) ago."))
    result = send(script, credentials=creds)
    assert result.outcome == Outcome("sent", 200, attempts=2)
    # One refresh to start with, one after the 401; each request carried the newest token.
    assert script.bearer_tokens() == ["tok-1", "tok-2"]
    assert creds.refreshes == 2
    forms = [dict(httpx.QueryParams(r.content.decode())) for r in script.token_requests]
    assert (
        forms
        == [
            {
                "grant_type": "refresh_token",
                "client_id": "client-1",
                "client_secret": "secret-1",
                "refresh_token": "refresh-1",
            }
        ]
        * 2
    )
    assert [str(r.url) for r in script.token_requests] == [BASE + "/oauth/v1/token"] * 2


def test_a_second_401_after_the_refresh_is_an_auth_error() -> None:
    creds = oauth()
    script = Script(error(401), error(401), error(401))
    result = send(script, credentials=creds)
    assert isinstance(result.error, AuthError)
    assert script.bearer_tokens() == ["tok-1", "tok-2"]
    assert creds.refreshes == 2


def test_a_failed_oauth_refresh_is_an_auth_error_without_the_secret() -> None:
    script = Script()
    bad = {"status": "BAD_CLIENT_SECRET", "message": "missing or invalid client secret"}
    script.oauth_answers.extend(httpx.Response(400, json=bad) for _ in range(5))
    result = send(script, credentials=Credentials(None, OAuthApp("client-1", "s3cr3t-value", "refresh-1")))
    assert isinstance(result.error, AuthError)
    assert result.error.exit_code == 3
    assert script.requests == []  # no event goes out without a token
    assert 1 <= len(script.token_requests) <= 2
    assert "s3cr3t-value" not in f"{result.error.message} {result.error.hint}"


def _missing_scope_body(scope: str) -> dict[str, Any]:
    return {
        "status": "error",
        "message": "This app hasn't been granted all required scopes to make this call.",
        "correlationId": "c0ffee00-0000-4000-8000-000000000002",
        "category": "MISSING_SCOPES",
        "errors": [
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
    }


@pytest.mark.parametrize("scope", ["media_bridge.write", "crm.objects.contacts.read"])
def test_403_missing_scopes_names_the_scope(scope: str) -> None:
    script = Script(httpx.Response(403, json=_missing_scope_body(scope)))
    result = send(script)
    assert isinstance(result.error, ScopeError)
    assert result.error.exit_code == 3
    assert result.error.hint is not None and f"'{scope}'" in result.error.hint
    assert len(script.requests) == 1


def test_404_says_the_base_url_looks_wrong() -> None:
    script = Script(error(404, "No such endpoint", category="OBJECT_NOT_FOUND"))
    result = send(script)
    assert isinstance(result.error, EndpointError)
    assert result.error.exit_code == 3
    assert PLAYED in result.error.message
    assert result.error.hint is not None and "base URL" in result.error.hint
    assert len(script.requests) == 1


# ---- 429 ---------------------------------------------------------------------------------------


def _limited(policy: str = "TEN_SECONDLY_ROLLING", headers: dict[str, str] | None = None) -> httpx.Response:
    body = {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": "c0ffee00-0000-4000-8000-000000000003",
        "policyName": policy,
    }
    return httpx.Response(429, json=body, headers=headers)


def test_429_with_retry_after_waits_that_long_then_sends() -> None:
    script = Script(_limited(headers={"Retry-After": "0.25"}))
    result = send(script)
    assert result.outcome == Outcome("sent", 200, attempts=2)
    assert result.elapsed >= 0.25
    stats = result.sender.stats
    assert (stats.rate_limited, stats.retries, stats.requests) == (1, 1, 2)


def test_429_without_retry_after_waits_for_the_window_to_free() -> None:
    script = Script(_limited())
    result = send(script, rate=Rate(3, 0.3))
    assert result.outcome == Outcome("sent", 200, attempts=2)
    assert result.elapsed >= 0.29
    stats = result.sender.stats
    assert (stats.rate_limited, stats.retries) == (1, 1)


def test_429_without_retry_after_and_no_known_window_backs_off() -> None:
    start = time.monotonic()

    def storm(request: httpx.Request) -> httpx.Response:
        return _limited() if time.monotonic() - start < 0.15 else echo(request)

    script = Script(then=storm)
    policy = RetryPolicy(max_attempts=6, max_seconds=60.0, base_delay=0.05, max_delay=1.0)
    result = send(script, rate=None, retry=policy)
    assert result.outcome is not None and result.outcome.status == "sent"


def test_a_429_storm_does_not_burn_the_attempts_of_queued_events() -> None:
    # 40 events at 20 per 0.4 s, 4 at a time; the server refuses everything for 0.5 s once
    # the first 12 went through. After a 429 nothing should go out until a window has passed,
    # so only the requests in flight when the storm starts, and once more when the window
    # reopens inside it, meet the storm: at most twice the concurrency.
    storm: dict[str, float] = {}

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.005)
        now = time.monotonic()
        if "start" not in storm and len(script.requests) > 12:
            storm["start"] = now
        if "start" in storm and now - storm["start"] < 0.5:
            return _limited(headers={"X-HubSpot-RateLimit-Remaining": "0"})
        return echo(request)

    script = Script(then=handler)  # type: ignore[arg-type]
    policy = RetryPolicy(max_attempts=4, max_seconds=60.0, base_delay=0.001, max_delay=0.005)

    async def main() -> tuple[list[Outcome], Sender]:
        sender = make_sender(script, rate=Rate(20, 0.4), retry=policy, concurrency=4)
        try:
            sem = asyncio.Semaphore(4)

            async def one(i: int) -> Outcome:
                async with sem:
                    return await sender.send(payload(f"s{i}"), (f"s{i}", "STARTED"))

            return list(await asyncio.gather(*(one(i) for i in range(40)))), sender
        finally:
            await sender.aclose()

    outcomes, sender = asyncio.run(main())
    assert [o.status for o in outcomes] == ["sent"] * 40
    assert sender.stats.rate_limited <= 8


def test_429_daily_stops_the_run_with_quota_exhausted() -> None:
    quota = DailyQuota()
    script = Script(_limited("DAILY"))
    result = send(script, quota=quota)
    assert isinstance(result.error, QuotaExhausted)
    assert result.error.exit_code == 3
    assert result.error.hint is not None and "midnight" in result.error.hint
    assert quota.remaining == 0
    assert len(script.requests) == 1


# ---- transient answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [477, 500, 502, 503, 504, 521, 523, 524])
def test_transient_status_is_retried_then_sent(status: int) -> None:
    first = (
        httpx.Response(status, text="<html><h1>Bad Gateway</h1></html>", headers={"Content-Type": "text/html"})
        if status in (502, 504)
        else error(status, "try later")
    )
    script = Script(first)
    result = send(script)
    assert result.outcome == Outcome("sent", 200, attempts=2)
    assert (result.sender.stats.retries, result.sender.stats.requests) == (1, 2)
    assert script.requests[0].content == script.requests[1].content == payload()


def test_423_waits_at_least_two_seconds() -> None:
    result = send(Script(error(423, "locked", category="LOCKED")))
    assert result.outcome == Outcome("sent", 200, attempts=2)
    assert result.elapsed >= 2.0


def test_477_honours_retry_after() -> None:
    result = send(Script(error(477, "migration in progress", headers={"Retry-After": "0.3"})))
    assert result.outcome == Outcome("sent", 200, attempts=2)
    assert result.elapsed >= 0.3


def test_transient_status_gives_up_after_max_attempts() -> None:
    script = Script(*[error(503, "Service Unavailable")] * 10)
    result = send(script)
    outcome = result.outcome
    assert outcome is not None
    assert (outcome.status, outcome.http_status, outcome.attempts, outcome.transient) == ("failed", 503, 4, True)
    assert outcome.error is not None and outcome.error.startswith("gave up after 4 attempts: HTTP 503")
    assert len(script.requests) == 4
    assert result.sender.stats.retries == 3


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
    ],
    ids=["read-timeout", "connect-timeout", "connect-error", "dropped", "reset"],
)
def test_network_errors_are_retried_then_sent(exc: Exception) -> None:
    result = send(Script(exc), on_timeout="retry")
    assert result.outcome == Outcome("sent", 200, attempts=2)
    assert result.sender.stats.retries == 1


def test_a_read_timeout_is_held_as_possibly_sent_by_default() -> None:
    script = Script(httpx.ReadTimeout("read timed out"))
    result = send(script)
    assert result.outcome is not None
    assert (result.outcome.status, result.outcome.attempts) == ("possibly_sent", 1)
    assert result.outcome.error is not None and "it may have arrived" in result.outcome.error
    assert len(script.requests) == 1 and result.sender.stats.timed_out == 1


def test_read_timeouts_retried_fail_transient_after_max_attempts() -> None:
    script = Script(*[httpx.ReadTimeout("read timed out") for _ in range(6)])
    result = send(script, on_timeout="retry")
    text = "no answer within the timeout (it may have arrived)"
    assert result.outcome == Outcome("failed", None, f"gave up after 4 attempts: {text}", 4, transient=True)
    assert len(script.requests) == 4 and result.sender.stats.timed_out == 4


def test_connection_failures_do_not_use_up_attempts_but_ten_in_a_row_stop_the_run() -> None:
    # max_attempts is 4: six refusals in a row, then an answer, is still a sent event...
    script = Script(*[httpx.ConnectError("connection refused") for _ in range(6)])
    result = send(script)
    assert result.outcome is not None and (result.outcome.status, result.outcome.attempts) == ("sent", 7)
    # ...while ten in a row stop the run, naming the host, with nothing marked failed.
    script = Script(*[httpx.ConnectError("connection refused") for _ in range(20)])
    result = send(script)
    assert isinstance(result.error, Unreachable) and result.error.exit_code == 3
    assert result.error.message.startswith("cannot connect to api.hubapi.com:443")
    assert len(script.requests) == 10


def test_retrying_stops_at_the_time_cap() -> None:
    policy = RetryPolicy(max_attempts=1000, max_seconds=0.2, base_delay=0.02, max_delay=0.02)
    script = Script(then=lambda r: error(500))
    result = send(script, retry=policy)
    outcome = result.outcome
    assert outcome is not None and (outcome.status, outcome.transient) == ("failed", True)
    assert 2 <= outcome.attempts < 1000
    assert result.elapsed < 1.0


# ---- rate-limit headers -------------------------------------------------------------------------


def _with_headers(**headers: str) -> Any:
    return lambda request: echo(request, headers={k.replace("_", "-"): v for k, v in headers.items()})


def test_burst_headers_set_the_limiter_rate() -> None:
    async def main() -> list[Rate | None]:
        script = Script(
            _with_headers(**{"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}),
            _with_headers(**{"X-HubSpot-RateLimit-Max": "250", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}),
            _with_headers(**{"X-HubSpot-RateLimit-Max": "50", "X-HubSpot-RateLimit-Interval-Milliseconds": "1000"}),
            _with_headers(**{"X-HubSpot-RateLimit-Max": "garbage"}),
        )
        sender = make_sender(script, rate=Rate(100, 10.0))
        seen: list[Rate | None] = [sender.limiter.rate]
        for i in range(4):
            await sender.send(payload(f"s{i}"), (f"s{i}", "STARTED"))
            seen.append(sender.limiter.rate)
        await sender.aclose()
        return seen

    assert asyncio.run(main()) == [
        Rate(100, 10.0),
        Rate(190, 10.0),
        Rate(250, 10.0),
        Rate(50, 1.0),
        Rate(50, 1.0),
    ]


def test_no_limit_given_is_adapted_from_the_first_answer() -> None:
    script = Script(
        _with_headers(**{"X-HubSpot-RateLimit-Max": "110", "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    )
    result = send(script, rate=None)
    assert result.sender.limiter.rate == Rate(110, 10.0)
    assert result.sender.limiter.adapted_from_headers is True


@pytest.mark.parametrize(("remaining", "free_after"), [("9", 9), ("3", 3), ("0", 0)])
def test_remaining_lower_than_our_count_books_phantom_slots(remaining: str, free_after: int) -> None:
    """One request of ours in a 10-slot window: the server says how many are left."""
    headers = {
        "X-HubSpot-RateLimit-Max": "10",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
        "X-HubSpot-RateLimit-Remaining": remaining,
    }

    async def main() -> int:
        limiter = RateLimiter(Rate(10, 1.0), clock=ScaledClock(1e-12))  # the clock stands still
        sender = make_sender(Script(_with_headers(**headers)), limiter=limiter)
        await sender.send(payload(), EXPECT)
        await sender.aclose()
        granted = 0
        while granted < 20:
            try:
                await asyncio.wait_for(limiter.acquire(), 0.05)
            except TimeoutError:
                break
            granted += 1
        return granted

    assert asyncio.run(main()) == free_after


# ---- daily quota ------------------------------------------------------------------------------


@pytest.mark.parametrize(("reserve", "sent"), [(0.05, 5), (0.0, 10), (0.1, 1)])
def test_daily_headers_stop_the_run_when_only_the_reserve_is_left(reserve: float, sent: int) -> None:
    """Daily limit 100, 10 left before the run: the reserve is ceil(100 x reserve)."""

    def answer(request: httpx.Request) -> httpx.Response:
        left = 10 - len(script.requests)
        return echo(
            request, headers={"X-HubSpot-RateLimit-Daily": "100", "X-HubSpot-RateLimit-Daily-Remaining": str(left)}
        )

    script = Script(then=answer)
    quota = DailyQuota(reserve)

    async def main() -> tuple[int, ImporterError | None]:
        sender = make_sender(script, quota=quota)
        done = 0
        try:
            for i in range(50):
                outcome = await sender.send(payload(f"s{i}"), (f"s{i}", "STARTED"))
                assert outcome.status == "sent"
                done += 1
        except QuotaExhausted as exc:
            return done, exc
        finally:
            await sender.aclose()
        return done, None

    done, exc = asyncio.run(main())
    assert done == sent
    assert len(script.requests) == sent  # the stop comes before a request, not after
    assert isinstance(exc, QuotaExhausted)
    assert exc.hint is not None and "midnight" in exc.hint
    assert (quota.daily, quota.remaining, quota.usable) == (100, 10 - sent, 0)


@pytest.mark.parametrize("slow_every", [2, 3, 4])
def test_at_the_end_of_the_quota_the_answers_in_flight_decide_and_every_request_above_the_reserve_is_used(
    slow_every: int,
) -> None:
    """HubSpot counts a request when it arrives; answers come back out of order (every Nth slow).
    A later answer's figure already counts the slow requests still in flight, so the sender waits
    for them instead of stopping while some of the quota above the reserve is free."""
    used = [0]

    async def answer(request: httpx.Request) -> httpx.Response:
        used[0] += 1
        left = 40 - used[0]  # 40 left of 100 before the run; the reserve is 5
        await asyncio.sleep(0.03 if used[0] % slow_every == 0 else 0.001)
        headers = {"X-HubSpot-RateLimit-Daily": "100", "X-HubSpot-RateLimit-Daily-Remaining": str(left)}
        return echo(request, headers=headers)

    script = Script(then=answer)  # type: ignore[arg-type]
    quota = DailyQuota(0.05)

    async def main() -> tuple[list[Outcome], list[ImporterError]]:
        sender = make_sender(script, quota=quota, concurrency=4)
        sessions = iter(f"s{i}" for i in range(60))
        outcomes: list[Outcome] = []
        stops: list[ImporterError] = []

        async def worker() -> None:  # as the run's send loop: the first stop ends every worker
            for session in sessions:
                if stops:
                    return
                try:
                    outcomes.append(await sender.send(payload(session), (session, "STARTED")))
                except ImporterError as exc:
                    stops.append(exc)
                    sender.stop()

        try:
            await asyncio.gather(*(worker() for _ in range(4)))
            return outcomes, stops
        finally:
            await sender.aclose()

    outcomes, stops = asyncio.run(main())
    assert [o.status for o in outcomes] == ["sent"] * 35  # all of it but the reserve
    assert len(script.requests) == used[0] == 35
    assert isinstance(stops[0], QuotaExhausted)
    assert (quota.remaining, quota.in_flight, quota.usable) == (5, 0, 0)


# ---- concurrency and pacing through the sender -----------------------------------------------


def test_concurrent_sends_never_exceed_the_pool_nor_the_window() -> None:
    in_flight = [0, 0]  # now, max
    times: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        times.append(time.monotonic())
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        return echo(request)

    script = Script(then=handler)  # type: ignore[arg-type]

    async def main() -> list[Outcome]:
        sender = make_sender(script, rate=Rate(10, 0.3), concurrency=4)
        try:
            bodies = [(payload(f"s{i}"), (f"s{i}", "STARTED")) for i in range(30)]
            return list(await asyncio.gather(*(sender.send(b, e) for b, e in bodies)))
        finally:
            await sender.aclose()

    started = time.monotonic()
    outcomes = asyncio.run(main())
    assert [o.status for o in outcomes] == ["sent"] * 30
    assert in_flight[1] == 4
    times.sort()
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + 0.3) <= 10
    assert time.monotonic() - started >= 0.6  # 30 requests need three windows
    bodies_seen = sorted(json.loads(r.content)["sessionId"] for r in script.requests)
    assert bodies_seen == sorted(f"s{i}" for i in range(30))


def test_a_daily_429_is_counted_as_rate_limited() -> None:
    result = send(Script(_limited("DAILY")))
    assert isinstance(result.error, QuotaExhausted)
    assert result.sender.stats.rate_limited == 1


def test_a_token_echoed_in_an_error_body_is_redacted() -> None:
    script = Script(error(400, f"Invalid header: Bearer {TOKEN} is not allowed here ({TOKEN})"))
    result = send(script)
    assert result.outcome is not None and result.outcome.error is not None
    assert TOKEN not in result.outcome.error
    assert "Invalid header" in result.outcome.error


def test_http2_needs_h2_and_says_how_to_get_it() -> None:
    import importlib.util

    from importer.errors import ConfigError

    async def make() -> None:
        sender = Sender(BASE, Credentials(TOKEN), RateLimiter(None), DailyQuota(), http2=True)
        await sender.aclose()

    if importlib.util.find_spec("h2") is None:
        with pytest.raises(ConfigError, match="needs the h2 package") as info:
            asyncio.run(make())
        assert info.value.hint is not None and "pip install 'httpx[http2]'" in info.value.hint
    else:
        asyncio.run(make())
