"""Running the simulator: in a background thread (tests, demo) or in the foreground (command)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from types import TracebackType

from importer.clock import SYSTEM, Clock
from importer.simulator.app import SimulatorApp
from importer.simulator.client import SimulatorClient
from importer.simulator.config import SimulatorConfig
from importer.simulator.httpserver import HttpServer

_START_TIMEOUT_S = 10.0


async def serve(
    config: SimulatorConfig,
    until: asyncio.Event,
    on_ready: Callable[[str], None] | None = None,
    access_log: Callable[[str], None] | None = None,
    clock: Clock = SYSTEM,
) -> None:
    """Serve on the current event loop until ``until`` is set, then close every connection."""
    app = SimulatorApp(config, clock=clock, access_log=access_log)
    http = HttpServer(app.handle)
    try:
        port = await http.start(config.host, config.port)
        if on_ready is not None:
            on_ready(f"http://{config.host}:{port}")
        await until.wait()
    finally:
        await http.close()
        app.close()


class Simulator:
    """The simulator on a free loopback port, served from a daemon thread::

        with Simulator(SimulatorConfig(burst=10)) as sim:
            httpx.post(sim.url + "/media-bridge/v1/events/media-played", headers=..., json=...)
            sim.client.stats()

    ``config`` is the starting configuration; ``sim.client.configure`` changes the running server
    (``sim.config`` and ``sim.token`` keep describing the start).

    ``clock`` is the simulator's time (limits, storms, latency, token expiry, the daily reset): a
    ``ScaledClock`` shared with the client under test plays minutes or a midnight in a second.
    """

    def __init__(self, config: SimulatorConfig | None = None, clock: Clock = SYSTEM) -> None:
        self.config = (config or SimulatorConfig()).check()
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._client: SimulatorClient | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not running; call start() first")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def token(self) -> str:
        """A configured token with every scope (the first one), for tests and the demo."""
        return self.config.required_token()

    @property
    def client(self) -> SimulatorClient:
        """Inspection client (events, stats, reset, configure), closed by ``stop``."""
        if self._client is None:
            self._client = SimulatorClient(self.url)
        return self._client

    def start(self) -> Simulator:
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def on_ready(url: str) -> None:
            self._url = url
            ready.set()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._stop = asyncio.Event()
            try:
                loop.run_until_complete(serve(self.config, self._stop, on_ready, clock=self.clock))
            except BaseException as exc:  # reported to start(); the thread must not die silently
                failure.append(exc)
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()
                ready.set()

        self._thread = threading.Thread(target=run, name="media-bridge-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_S) or failure or self._url is None:
            self.stop()
            if failure:
                raise RuntimeError(f"the simulator could not start: {failure[0]}") from failure[0]
            raise RuntimeError("the simulator did not start in time")
        return self

    def stop(self) -> None:
        """Close every connection and the port; safe to call twice."""
        if self._client is not None:
            self._client.close()
            self._client = None
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(_START_TIMEOUT_S)
        self._loop = self._stop = self._thread = None
        self._url = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
