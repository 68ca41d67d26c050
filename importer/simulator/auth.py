"""Bearer tokens, scopes and the OAuth refresh-token grant, with HubSpot's error bodies."""

from __future__ import annotations

import math
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from importer.simulator.config import Scopes, SimulatorConfig

_NOT_FOUND_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def correlation_id() -> str:
    return str(uuid.uuid4())


def error_body(message: str, category: str, **extra: object) -> dict[str, object]:
    """HubSpot's usual error shape."""
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
        **extra,
    }


@dataclass(frozen=True, slots=True)
class Denied:
    status: int  # 401 or 403
    body: dict[str, object]


class Auth:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.config = config
        # access token -> monotonic expiry; kept after expiry so it can be told apart from a wrong one
        self._issued: dict[str, float] = {}

    def reset(self) -> None:
        self._issued.clear()

    def check(self, authorization: str | None, scope: str) -> Denied | None:
        """None when the request may go on; otherwise the 401/403 to answer."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return Denied(401, error_body(_NOT_FOUND_MESSAGE, "INVALID_AUTHENTICATION"))
        scopes: Scopes
        if token in self.config.tokens:
            scopes = self.config.tokens[token]
        elif token in self._issued:
            left = self._issued[token] - self._clock()
            if left <= 0:
                ago = math.ceil(-left)
                return Denied(
                    401,
                    error_body(
                        f"The OAuth token used to make this call expired {ago} second(s) ago.",
                        "EXPIRED_AUTHENTICATION",
                    ),
                )
            scopes = None
        else:
            return Denied(
                401,
                error_body("The access token provided is invalid. " + _NOT_FOUND_MESSAGE, "INVALID_AUTHENTICATION"),
            )
        if scopes is not None and scope not in scopes:
            return Denied(
                403,
                error_body(
                    f"This app hasn't been granted all required scopes to make this call: missing {scope}. "
                    "Read more about required scopes here: https://developers.hubspot.com/scopes.",
                    "MISSING_SCOPES",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    links={"scopes": "https://developers.hubspot.com/scopes"},
                ),
            )
        return None

    def grant(self, form: Mapping[str, str]) -> tuple[int, dict[str, object]]:
        """``POST /oauth/v1/token``: (status, body). Only the refresh_token grant exists here."""
        c = self.config

        def bad(status: str, message: str) -> tuple[int, dict[str, object]]:
            return 400, {"status": status, "message": message, "correlationId": correlation_id()}

        if form.get("grant_type") != "refresh_token":
            return bad("BAD_GRANT_TYPE", "grant_type must be refresh_token")
        if not c.oauth_enabled or form.get("client_id") != c.client_id:
            return bad("BAD_CLIENT_ID", "missing or unknown client id")
        if form.get("client_secret") != c.client_secret:
            return bad("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if form.get("refresh_token") != c.refresh_token:
            return bad("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
        access = "sim-oauth-" + secrets.token_urlsafe(24)
        self._issued[access] = self._clock() + c.token_ttl_s
        return 200, {
            "access_token": access,
            "refresh_token": c.refresh_token,
            # HubSpot answers whole seconds; round up so a sub-second test TTL does not read as 0.
            "expires_in": math.ceil(c.token_ttl_s),
            "token_type": "bearer",
        }
