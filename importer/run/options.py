"""What a run is asked to do: the options of ``run`` and ``retry`` as one value."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from importer.clock import SYSTEM, Clock
from importer.hubspot.pacing import Rate
from importer.hubspot.sender import DEFAULT_TIMEOUT_S, RetryPolicy


@dataclass
class MediaOptions:
    """How a run treats media objects (mappings with a ``media:`` section)."""

    sync: bool = True  # False: --no-media-sync, only the ids the state already knows are used
    update: bool = False  # PATCH objects whose described properties changed
    object_types: dict[str, str] = field(default_factory=dict)  # --object-type, over the mapping's


@dataclass
class RunOptions:
    base_url: str
    state_dir: str = ".media-import"
    concurrency: int = 8
    rate: Rate | None = field(default_factory=lambda: Rate(100, 10.0))
    daily_reserve: float = 0.05
    timeout_s: float = DEFAULT_TIMEOUT_S
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    force: bool = False
    results_all: bool = False
    grace_s: float = 30.0  # how long in-flight requests may take to finish once a stop is asked
    transport: httpx.AsyncBaseTransport | None = None
    command: str = "run"
    incremental: bool = True  # skip files the manifest says were fully imported and are unchanged
    since_ms: int | None = None  # keep events at or after since - lookback
    lookback_s: float = 86_400.0
    retry_leftovers: bool = True  # re-drive not_sent / transiently failed events of earlier runs
    retry_terminal: bool = False  # ...and those HubSpot refused with a 4xx
    recheck_contacts_s: float = 86_400.0  # ask again for emails HubSpot did not know this long ago
    http2: bool = False
    on_timeout: str = "hold"  # an event whose request got no answer: held as possibly_sent, or sent again
    wait_for_quota: bool = False  # sleep until the daily quota resets instead of stopping
    account_timezone: str = "UTC"  # where the account's midnight (the quota's reset) is
    clock: Clock = SYSTEM  # the sender's, limiter's and quota's time (tests run it fast)
    media: MediaOptions = field(default_factory=MediaOptions)  # mappings with a media: section
