"""Credentials: a private app token, or OAuth access tokens refreshed before they expire.

Every secret is registered with ``errors.register_secret`` the moment it is
read, so ``redact`` removes it from anything shown, logged or written.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from importer.clock import SYSTEM, Clock
from importer.errors import AuthError, ConfigError, NetworkError, register_secret

TOKEN_ENV = "HUBSPOT_ACCESS_TOKEN"
CLIENT_ID_ENV = "HUBSPOT_CLIENT_ID"
CLIENT_SECRET_ENV = "HUBSPOT_CLIENT_SECRET"
REFRESH_TOKEN_ENV = "HUBSPOT_REFRESH_TOKEN"


class RefreshFailed(AuthError):
    """HubSpot refused to issue an access token for the OAuth app."""


@dataclass
class OAuthApp:
    client_id: str
    client_secret: str
    refresh_token: str


class Credentials:
    """Hands out a bearer token; refreshes OAuth tokens ahead of expiry and once after a 401."""

    def __init__(self, token: str | None, oauth: OAuthApp | None = None, clock: Clock = SYSTEM) -> None:
        if token is None and oauth is None:
            raise ConfigError(
                "no HubSpot token",
                hint=f"set {TOKEN_ENV}, or pass --token-file FILE, or give OAuth client id, secret "
                "and refresh token (--client-id/--client-secret/--refresh-token or their env vars)",
            )
        for secret in (token, *(vars(oauth).values() if oauth else ())):
            register_secret(secret)
        self._token = token
        self.oauth = oauth
        self._expires_at = float("inf") if oauth is None else 0.0
        self._lock = asyncio.Lock()
        self.refreshes = 0
        self.clock = clock  # the sender sets its own, so token expiry and the simulator agree in tests

    @classmethod
    def from_options(
        cls,
        token_file: str | None,
        client_id: str | None,
        client_secret: str | None,
        refresh_token: str | None,
    ) -> Credentials:
        token: str | None = None
        if token_file:
            try:
                token = Path(token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"cannot read the token file {token_file} ({exc.strerror or exc})") from None
            if not token:
                raise ConfigError(f"the token file {token_file} is empty")
        else:
            token = os.environ.get(TOKEN_ENV, "").strip() or None
        cid = client_id or os.environ.get(CLIENT_ID_ENV)
        secret = client_secret or os.environ.get(CLIENT_SECRET_ENV)
        refresh = refresh_token or os.environ.get(REFRESH_TOKEN_ENV)
        given = [x for x in (cid, secret, refresh) if x]
        oauth = None
        if given:
            if len(given) != 3:
                raise ConfigError(
                    "OAuth needs all three of client id, client secret and refresh token",
                    hint=f"set {CLIENT_ID_ENV}, {CLIENT_SECRET_ENV} and {REFRESH_TOKEN_ENV} (or the options)",
                )
            assert cid and secret and refresh
            oauth = OAuthApp(cid, secret, refresh)
            token = None  # an OAuth app starts by refreshing
        return cls(token, oauth)

    async def token(self, client: httpx.AsyncClient) -> str:
        if self.oauth is not None and self.clock.monotonic() >= self._expires_at:
            await self.refresh(client, stale=self._token)
        assert self._token is not None
        return self._token

    def expire(self) -> None:
        """Make the next ``token`` call refresh an OAuth token (after a long wait, e.g. for the quota)."""
        if self.oauth is not None:
            self._expires_at = 0.0

    @property
    def can_refresh(self) -> bool:
        return self.oauth is not None

    async def refresh(self, client: httpx.AsyncClient, stale: str | None) -> None:
        """Get a new access token, unless another task already replaced ``stale``."""
        assert self.oauth is not None
        async with self._lock:
            if self._token is not None and self._token != stale and self.clock.monotonic() < self._expires_at:
                return
            form = {
                "grant_type": "refresh_token",
                "client_id": self.oauth.client_id,
                "client_secret": self.oauth.client_secret,
                "refresh_token": self.oauth.refresh_token,
            }
            try:
                response = await client.post("/oauth/v1/token", data=form)
            except httpx.TransportError as exc:
                raise NetworkError(f"cannot reach the OAuth token endpoint ({type(exc).__name__})") from None
            if response.status_code != 200:
                raise RefreshFailed(
                    f"OAuth refresh failed with HTTP {response.status_code}",
                    hint="check the client id, client secret and refresh token of the app",
                )
            body = response.json()
            token = str(body["access_token"])
            register_secret(token)
            if body.get("refresh_token"):
                self.oauth.refresh_token = str(body["refresh_token"])
                register_secret(self.oauth.refresh_token)
            ttl = float(body.get("expires_in", 1800))
            # Refresh a little before expiry: a tenth of the lifetime, at most a minute.
            self._expires_at = self.clock.monotonic() + ttl - min(60.0, ttl * 0.1)
            self._token = token
            self.refreshes += 1
