"""OAuth: the refresh-token grant issues short-lived tokens that work, then expire."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from importer.clock import ManualClock
from importer.simulator import Simulator

from .helpers import TOKEN_URL, assert_error_shape, event, post

OAUTH = {"client_id": "cid", "client_secret": "secret", "refresh_token": "refresh-1"}


def refresh(sim: Simulator, **changes: str) -> httpx.Response:
    form = {"grant_type": "refresh_token", **OAUTH, **changes}
    return httpx.post(sim.url + TOKEN_URL, data=form)


def test_refresh_issues_a_token_that_works_then_expires(make_simulator: Callable[..., Simulator]) -> None:
    clock = ManualClock()
    sim = make_simulator(token_ttl_s=0.6, clock=clock, **OAUTH)
    response = refresh(sim)
    assert response.status_code == 200
    grant = response.json()
    assert set(grant) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert grant["token_type"] == "bearer" and grant["refresh_token"] == "refresh-1"
    assert grant["expires_in"] == 1  # whole seconds, rounded up
    token = grant["access_token"]
    clock.advance(0.59)
    assert post(sim, body=event(), token=token).status_code == 200
    clock.advance(0.02)
    expired = post(sim, body=event(), token=token)
    assert expired.status_code == 401
    assert_error_shape(expired.json(), "EXPIRED_AUTHENTICATION")
    fresh = refresh(sim).json()["access_token"]
    assert fresh != token
    assert post(sim, body=event(), token=fresh).status_code == 200
    assert sim.client.stats()["tokens_issued"] == 2
    assert len(sim.client.events()) == 2


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"refresh_token": "stolen"}, "BAD_REFRESH_TOKEN"),
        ({"client_secret": "guess"}, "BAD_CLIENT_SECRET"),
        ({"client_id": "other"}, "BAD_CLIENT_ID"),
        ({"grant_type": "authorization_code"}, "BAD_GRANT_TYPE"),
    ],
)
def test_bad_refresh_requests_are_400(
    make_simulator: Callable[..., Simulator], changes: dict[str, str], status: str
) -> None:
    sim = make_simulator(**OAUTH)
    response = refresh(sim, **changes)
    assert response.status_code == 400
    assert response.json()["status"] == status
    assert sim.client.stats()["tokens_issued"] == 0


def test_without_oauth_configured_no_token_is_issued(simulator: Simulator) -> None:
    response = refresh(simulator)
    assert response.status_code == 400 and response.json()["status"] == "BAD_CLIENT_ID"


def test_static_tokens_keep_working_next_to_oauth(make_simulator: Callable[..., Simulator]) -> None:
    sim = make_simulator(tokens={"private-app": None}, **OAUTH)
    assert post(sim, body=event(), token="private-app").status_code == 200
    assert post(sim, body=event(), token="refresh-1").status_code == 401  # a refresh token is no access token
