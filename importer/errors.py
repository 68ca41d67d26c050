"""The one exception tree of media-import.

Every error the library raises on purpose is an ``ImporterError``. The CLI maps
each class to a one-line message, an optional hint and an exit code; nothing
else reaches the user as a traceback (unless ``--debug``).

    ImporterError                      exit_code
    ├── ConfigError                    2   the mapping or the command line is wrong
    │   └── MappingError               2   every problem of a mapping, each with its YAML path
    ├── InputError                     2   an input file cannot be read as the mapping says
    │   └── EmptyInput                 -   a header and no rows: read as 0 rows, with a warning
    │                                      (3 once sending started: the run stops, resumable)
    ├── StateError                     2   the state directory's journal is lost or unusable
    ├── TerminalError                  3   the run must stop now; what is left is resumable
    │   ├── AuthError                  3   401: bad or expired token (after one OAuth refresh)
    │   ├── ScopeError                 3   403: the token lacks a scope
    │   ├── EndpointError              3   404: wrong base URL or path
    │   ├── QuotaExhausted             3   the daily quota (minus the reserve) is used up
    │   ├── Unreachable                3   no connection to the API host for 10 tries or 30 s
    │   └── Interrupted                3   SIGINT / SIGTERM
    ├── LockedError                    4   another run holds the state directory
    └── TransientError                 -   retried by the sender; reaches the user only as a count
        ├── RateLimited                    429 (TEN_SECONDLY_ROLLING); carries Retry-After
        ├── ServerError                    5xx, 423, 477
        └── NetworkError                   refused or dropped connections, timeouts
            ├── AnswerTimeout              no answer in time: the request may have been processed
            └── ConnectionFailed           no connection at all (refused, DNS, TLS, connect timeout)

Row-level problems are never exceptions: they are ``RowError`` records (see
``importer.mapping.validate``) and end up in the results file.

Messages never contain a token: ``redact`` is applied to anything that came
from the network or from an exception of another library before it is shown.
"""

from __future__ import annotations

import re

# The exit codes of every command, defined here only.
EXIT_OK = 0  # everything was valid (and, for run, sent)
EXIT_ROWS = 1  # some events were invalid or failed: see the results file
EXIT_CONFIG = 2  # configuration, input or state error: nothing was sent
EXIT_STOPPED = 3  # stopped early and resumable: rerun the same command
EXIT_LOCKED = 4  # another run holds the state directory's lock


class ImporterError(Exception):
    """Base of every error media-import raises on purpose."""

    exit_code = EXIT_CONFIG
    transient = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(ImporterError):
    """The command line or the mapping is wrong; nothing was sent."""


class MappingError(ConfigError):
    """A mapping file has one or more problems, each with its YAML path."""

    def __init__(self, source: str, problems: list[str], *, hint: str | None = None) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun} in the mapping:\n{lines}", hint=hint)


class InputError(ImporterError):
    """An input file cannot be read (missing, corrupt, wrong format or columns)."""


class EmptyInput(InputError):
    """An input with a header and no data rows: 0 rows, not a failure (a run reads it with a warning)."""


class StateError(ImporterError):
    """The state directory cannot be trusted (its journal is missing, empty or corrupt)."""


class TerminalError(ImporterError):
    """The run has to stop; events not yet sent stay pending and a rerun resumes."""

    exit_code = EXIT_STOPPED


class AuthError(TerminalError):
    """HubSpot answered 401: the token is wrong or expired."""


class ScopeError(TerminalError):
    """HubSpot answered 403: the token lacks a scope."""


class EndpointError(TerminalError):
    """HubSpot answered 404: the base URL or the path is wrong."""


class QuotaExhausted(TerminalError):
    """The daily request quota, minus the reserve, is used up."""


class Unreachable(TerminalError):
    """The API host refused or failed every connection for a while: nothing more can be sent."""


class Interrupted(TerminalError):
    """The run was interrupted by a signal."""


class LockedError(ImporterError):
    """Another run holds the lock of the state directory."""

    exit_code = EXIT_LOCKED


class TransientError(ImporterError):
    """A failure worth retrying: the same request may succeed later."""

    exit_code = EXIT_STOPPED
    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        http_status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after
        self.http_status = http_status


class RateLimited(TransientError):
    """429 on the burst window."""


class ServerError(TransientError):
    """5xx, 423 or 477 from HubSpot."""


class NetworkError(TransientError):
    """A timeout, a refused or a dropped connection."""


class AnswerTimeout(NetworkError):
    """The request went out but no answer came in time: HubSpot may have processed it."""


class ConnectionFailed(NetworkError):
    """No connection could be made: the request never reached HubSpot."""


_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# What looks like a HubSpot credential wherever it comes from (a token given where a path belongs,
# an answer that quotes it): private app tokens (pat-na1-…) and OAuth refresh tokens (na1-…, eu1-…).
_TOKEN_LIKE = re.compile(r"\bpat-[A-Za-z0-9]{2,6}-[A-Za-z0-9-]{8,}|\b(?:na|eu|ap)\d-[0-9a-fA-F]{4}-[0-9a-fA-F-]{20,}")
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that ``redact`` removes it from any text."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """Remove every registered secret, any bearer credential and anything token-like from ``text``."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _TOKEN_LIKE.sub("***", text)
    return _BEARER.sub(r"\1***", text)
