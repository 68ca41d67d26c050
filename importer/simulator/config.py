"""Settings of the simulator: one dataclass, its checks, and runtime changes from JSON.

The same ``SimulatorConfig`` is built by the Python API, by the ``simulate`` command line and by
``POST /__sim/config``; this module is the one place that says what a valid setting is, so the
three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MEDIA_BRIDGE_WRITE = "media_bridge.write"
MEDIA_BRIDGE_READ = "media_bridge.read"  # listing and reading media objects
MEDIA_OBJECTS = ("strict", "lenient")
CONTACTS_READ = "crm.objects.contacts.read"
KNOWN_SCOPES = (MEDIA_BRIDGE_WRITE, CONTACTS_READ)

# ``None`` as a token's scopes means "every scope", the usual case for a local test token.
Scopes = frozenset[str] | None

# Settings that shape the listening socket or open files: fixed once the server runs.
STARTUP_ONLY = frozenset({"host", "port", "record_path"})


def _default_tokens() -> dict[str, Scopes]:
    return {"demo-token": None}


@dataclass
class SimulatorConfig:
    """Everything the simulator can be told. Defaults: a quiet, fault-free HubSpot."""

    host: str = "127.0.0.1"
    port: int = 0
    portal_id: int = 12345
    app_id: int = 424242  # answered as ``providerId``
    tokens: dict[str, Scopes] = field(default_factory=_default_tokens)
    # Rolling burst window; burst 0 means unlimited (and no burst headers are sent).
    burst: int = 100
    window_ms: int = 10_000
    daily: int | None = None  # None or 0: no daily quota and no daily headers
    timezone: str = "UTC"  # the account's time zone: the daily quota resets at its midnight
    retry_after_on_429: bool = False  # HubSpot does not document Retry-After on 429
    # OAuth refresh-token flow; all three or none.
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    token_ttl_s: float = 1800.0
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int | None = None
    # Fault rates are fractions of authenticated, not rate-limited requests; their sum is at most 1.
    error_rate: float = 0.0  # 500/502/503/504
    drop_rate: float = 0.0  # socket closed with no answer
    slow_rate: float = 0.0  # answered after slow_ms
    slow_ms: float = 10_000.0
    locked_rate: float = 0.0  # 423
    migration_rate: float = 0.0  # 477
    fault_retry_after_s: int | None = None  # Retry-After on 423 and 477 when set
    storm_every_s: float | None = None  # a 429 storm starts every N seconds...
    storm_duration_s: float = 2.0  # ...and lasts this long
    storm_first_s: float | None = None  # the first storm starts this long after the start (default storm_every_s)
    background_load: float = 0.0  # share of the burst window another integration keeps busy (0..1)
    contacts: dict[str, int] = field(default_factory=dict)  # email -> contact id
    # strict: an event whose mediaBridgeId / externalId names no media object is refused (400)
    media_objects: str = "strict"
    record_path: str | None = None  # JSON Lines copy of every accepted event

    def __post_init__(self) -> None:
        # Forgiving about containers (a set or list of scopes, a mixed-case email); strict about values.
        self.tokens = {
            token: scopes if scopes is None or isinstance(scopes, frozenset) else frozenset(scopes)
            for token, scopes in self.tokens.items()
        }
        self.contacts = normalize_contacts(self.contacts.items())

    def problems(self) -> list[str]:
        """Every reason this configuration is unusable, all at once."""
        out: list[str] = []
        if not 0 <= self.port <= 65535:
            out.append(f"port must be 0..65535, got {self.port}")
        if self.portal_id <= 0 or self.app_id <= 0:
            out.append("portal_id and app_id must be positive")
        if self.burst < 0:
            out.append(f"burst must be >= 0 (0 = unlimited), got {self.burst}")
        if self.window_ms <= 0:
            out.append(f"window_ms must be > 0, got {self.window_ms}")
        if self.daily is not None and self.daily < 0:
            out.append(f"daily must be >= 0 (0 = no quota), got {self.daily}")
        oauth = (self.client_id, self.client_secret, self.refresh_token)
        if any(v is not None for v in oauth) and not all(oauth):
            out.append("OAuth needs client_id, client_secret and refresh_token together")
        if not self.token_ttl_s > 0:
            out.append(f"token_ttl_s must be > 0, got {self.token_ttl_s}")
        for name in ("latency_ms", "jitter_ms", "slow_ms"):
            if not getattr(self, name) >= 0:
                out.append(f"{name} must be >= 0, got {getattr(self, name)}")
        rates = {n: getattr(self, n) for n in FAULT_RATES}
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                out.append(f"{name} must be between 0 and 1, got {rate}")
        if sum(rates.values()) > 1.0 + 1e-9:
            out.append(f"the fault rates add up to {sum(rates.values()):g}, more than 1")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            out.append(f"timezone must be an IANA time zone such as UTC or America/New_York, got {self.timezone!r}")
        if not 0.0 <= self.background_load < 1.0:
            out.append(f"background_load must be at least 0 and below 1, got {self.background_load}")
        if self.fault_retry_after_s is not None and self.fault_retry_after_s < 0:
            out.append("fault_retry_after_s must be >= 0")
        if self.storm_every_s is not None:
            if not self.storm_every_s > 0:
                out.append(f"storm_every_s must be > 0, got {self.storm_every_s}")
            elif not 0 < self.storm_duration_s < self.storm_every_s:
                out.append("storm_duration_s must be > 0 and shorter than storm_every_s")
        if self.storm_first_s is not None and self.storm_first_s < 0:
            out.append(f"storm_first_s must be >= 0, got {self.storm_first_s}")
        for token, scopes in self.tokens.items():
            if not token or ":" in token or any(c.isspace() for c in token):
                out.append(f"token {token!r} must be non-empty, without ':' or spaces")
            if scopes is not None and not isinstance(scopes, frozenset):
                out.append(f"scopes of token {token!r} must be a frozenset or None")
        if self.media_objects not in MEDIA_OBJECTS:
            out.append(f"media_objects must be strict or lenient, got {self.media_objects!r}")
        for email, contact_id in self.contacts.items():
            if "@" not in email or email != email.strip().lower():
                out.append(f"contact email {email!r} must be a lower-case address")
            if isinstance(contact_id, bool) or not isinstance(contact_id, int) or contact_id <= 0:
                out.append(f"contact id of {email!r} must be a positive integer")
        return out

    def check(self) -> SimulatorConfig:
        """Return self, or raise ``ValueError`` listing every problem."""
        problems = self.problems()
        if problems:
            raise ValueError("invalid simulator configuration: " + "; ".join(problems))
        return self

    @property
    def oauth_enabled(self) -> bool:
        return self.client_id is not None

    @property
    def daily_limit(self) -> int | None:
        return self.daily or None

    def first_token(self) -> str | None:
        """The token a test or a person should use: the first one with every needed scope."""
        for token, scopes in self.tokens.items():
            if scopes is None or set(KNOWN_SCOPES) <= scopes:
                return token
        return next(iter(self.tokens), None)

    def required_token(self) -> str:
        """``first_token``, for a server that must have one (the demo, tests)."""
        token = self.first_token()
        if token is None:
            raise RuntimeError("no static token is configured")
        return token


FAULT_RATES = ("error_rate", "drop_rate", "slow_rate", "locked_rate", "migration_rate")


def parse_token_spec(spec: str) -> tuple[str, Scopes]:
    """``"T"`` → all scopes; ``"T:a,b"`` → exactly scopes a and b; ``"T:"`` → no scope."""
    token, sep, scope_text = spec.partition(":")
    if not sep:
        return token, None
    return token, frozenset(s.strip() for s in scope_text.split(",") if s.strip())


def normalize_contacts(pairs: Iterable[tuple[str, int]]) -> dict[str, int]:
    # HubSpot stores emails lower-cased; lookups by email are case-insensitive.
    return {email.strip().lower(): contact_id for email, contact_id in pairs}


def _tokens_from_json(value: object) -> dict[str, Scopes]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return dict(parse_token_spec(v) for v in value)
    if isinstance(value, Mapping):
        tokens: dict[str, Scopes] = {}
        for token, scopes in value.items():
            if scopes is None:
                tokens[str(token)] = None
            elif isinstance(scopes, list | tuple | set | frozenset) and all(isinstance(s, str) for s in scopes):
                tokens[str(token)] = frozenset(scopes)
            else:
                raise ValueError(f"tokens[{token!r}] must be a list of scopes or null")
        return tokens
    raise ValueError('tokens must be {"token": [scopes] | null} or ["token:scope,scope", ...]')


def _contacts_from_json(value: object) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError('contacts must be {"email": id, ...}')
    pairs: list[tuple[str, int]] = []
    for email, contact_id in value.items():
        if isinstance(contact_id, bool) or not isinstance(contact_id, int):
            raise ValueError(f"contacts[{email!r}] must be an integer id")
        pairs.append((str(email), contact_id))
    return normalize_contacts(pairs)


def _coerce(name: str, value: object, hint: Any) -> object:
    if name == "tokens":
        return _tokens_from_json(value)
    if name == "contacts":
        return _contacts_from_json(value)
    args = get_args(hint)
    optional = type(None) in args
    base = next(a for a in args if a is not type(None)) if optional else hint
    if value is None:
        if optional:
            return None
        raise ValueError(f"{name} cannot be null")
    if base is bool and isinstance(value, bool):
        return value
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is float and isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite")
        return float(value)
    if base is str and isinstance(value, str):
        return value
    raise ValueError(f"{name} must be {getattr(base, '__name__', base)}, got {value!r}")


def apply_changes(config: SimulatorConfig, changes: Mapping[str, object], *, running: bool = True) -> SimulatorConfig:
    """A new, checked config with ``changes`` (JSON-like values) applied.

    Raises ``ValueError`` listing every problem at once.
    """
    hints = get_type_hints(SimulatorConfig)
    problems: list[str] = []
    coerced: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in hints:
            close = difflib.get_close_matches(name, list(hints), n=1)
            problems.append(f"unknown setting {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        if running and name in STARTUP_ONLY:
            problems.append(f"{name} can only be set before the server starts")
            continue
        try:
            coerced[name] = _coerce(name, value, hints[name])
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    new = dataclasses.replace(config, **coerced)
    new.check()
    return new


def config_to_json(config: SimulatorConfig) -> dict[str, object]:
    """The config as plain JSON values (scope sets become sorted lists)."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "tokens":
            value = {t: (None if s is None else sorted(s)) for t, s in value.items()}
        elif f.name == "contacts":
            value = dict(value)
        out[f.name] = value
    return out
