"""Seeded fault injection: which request fails, how, and when a 429 storm is on.

One random draw per eligible request picks at most one fault, so the rates are exact shares that
cannot overlap. A sequential client with the same ``seed`` sees the same faults in the same order;
with concurrent clients the order of arrival decides who gets which draw.
Latency jitter uses its own generator, so turning jitter on does not move the faults.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from importer.simulator.config import SimulatorConfig

DROP = "dropped"
SERVER_ERROR = "server_error"
SLOW = "slow"
LOCKED = "locked"
MIGRATION = "migration"
STORM = "storm"
FAULT_KINDS = (DROP, SERVER_ERROR, SLOW, LOCKED, MIGRATION, STORM)
SERVER_ERROR_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    status: int = 0  # the answer's status; 0 for a drop, and for slow (decided after the delay)


class FaultInjector:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.config = config
        self._rng = random.Random(config.seed)
        self._jitter_rng = random.Random(None if config.seed is None else config.seed + 1)
        self._storm_origin = clock()

    def reconfigure(self, config: SimulatorConfig, *, reseed: bool, restart_storms: bool) -> None:
        self.config = config
        if reseed:
            self._rng = random.Random(config.seed)
            self._jitter_rng = random.Random(None if config.seed is None else config.seed + 1)
        if restart_storms:
            self._storm_origin = self._clock()

    def reset(self) -> None:
        """Start over as if just started: same seed sequence, storm schedule from now."""
        self.reconfigure(self.config, reseed=True, restart_storms=True)

    def latency_s(self) -> float:
        c = self.config
        jitter = self._jitter_rng.uniform(0, c.jitter_ms) if c.jitter_ms else 0.0
        return (c.latency_ms + jitter) / 1000

    def storm_left_s(self) -> float:
        """Seconds left in the current 429 storm, or 0 when there is none.

        Storms start ``storm_first_s`` (default ``storm_every_s``) after the start (or the last reset
        or storm change) and then every ``storm_every_s``; the first stretch is calm so a client can
        get going.
        """
        every = self.config.storm_every_s
        if every is None:
            return 0.0
        elapsed = self._clock() - self._storm_origin
        first = every if self.config.storm_first_s is None else self.config.storm_first_s
        if elapsed < first:
            return 0.0
        into = (elapsed - first) % every
        return max(0.0, self.config.storm_duration_s - into)

    def draw(self) -> Fault | None:
        c = self.config
        if not (c.drop_rate or c.error_rate or c.slow_rate or c.locked_rate or c.migration_rate):
            return None
        u = self._rng.random()
        for kind, rate, status in (
            (DROP, c.drop_rate, 0),
            (SERVER_ERROR, c.error_rate, -1),
            (SLOW, c.slow_rate, 0),
            (LOCKED, c.locked_rate, 423),
            (MIGRATION, c.migration_rate, 477),
        ):
            if u < rate:
                if status == -1:
                    status = self._rng.choice(SERVER_ERROR_STATUSES)
                return Fault(kind, status)
            u -= rate
        return None
