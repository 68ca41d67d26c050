"""``python faulty.py FAULT ARGS...``: ``media-import ARGS`` with one fault injected into the run.

FAULT is ``none``, ``journal-full:N`` (the journal's N+1th write fails as a full disk does),
``results-full:N`` (the results file's N+1th write fails with ENOSPC), ``worker-crash:N`` (the
N+1th send raises a bug), ``deaf-worker:S`` (every send ignores cancellation and takes S s) or
``slow-start`` (the inputs' headers take an hour). Used by the watchdog tests, which run it as a
child process.
"""

from __future__ import annotations

import errno
import sqlite3
import sys
from typing import Any


def _after(n: int, make: Any) -> Any:
    calls = [0]

    def wrap(original: Any) -> Any:
        def faulty(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > n:
                raise make()
            return original(*args, **kwargs)

        return faulty

    return wrap


def inject(fault: str) -> None:
    name, _, count = fault.partition(":")
    n = int(count or 0)
    if name == "journal-full":
        from importer.state.journal import Journal

        Journal.record = _after(n, lambda: sqlite3.OperationalError("database or disk is full"))(Journal.record)  # type: ignore[method-assign]
    elif name == "results-full":
        from importer.state.results import ResultsWriter

        ResultsWriter.write = _after(n, lambda: OSError(errno.ENOSPC, "No space left on device"))(ResultsWriter.write)  # type: ignore[method-assign]
    elif name == "worker-crash":
        from importer.hubspot.sender import Sender

        original = Sender.send
        calls = [0]

        async def send(self: Sender, *args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] > n:
                raise RuntimeError("a bug in the sender")
            return await original(self, *args, **kwargs)

        Sender.send = send  # type: ignore[method-assign]
    elif name == "deaf-worker":
        # Each send swallows its cancellation (as asyncio.wait_for can in Python 3.11) and sits long.
        import asyncio

        from importer.hubspot.sender import Outcome, Sender

        async def deaf(self: Sender, *args: Any, **kwargs: Any) -> Any:
            print("a deaf send started", file=sys.stderr, flush=True)
            deadline = asyncio.get_running_loop().time() + (n or 3600)
            while asyncio.get_running_loop().time() < deadline:
                try:
                    await asyncio.sleep(1)
                except asyncio.CancelledError:
                    continue  # never lets a cancellation through
            return Outcome("sent", 200)

        Sender.send = deaf  # type: ignore[method-assign]
    elif name == "slow-start":
        import time

        from importer.run.pipeline import Pipeline

        def preflight(self: Pipeline) -> None:
            print("reading the headers", file=sys.stderr, flush=True)
            time.sleep(3600)

        Pipeline.preflight = preflight  # type: ignore[method-assign]
    elif name != "none":
        raise SystemExit(f"unknown fault {fault}")


if __name__ == "__main__":
    inject(sys.argv[1])
    from importer.cli.main import main

    sys.exit(main(sys.argv[2:]))
