"""Measure the simulator's throughput: ``python -m importer.simulator.loadtest``.

The server runs in a child process so that the client (httpx.AsyncClient, N concurrent
keep-alive connections) does not share its GIL; the figure is what one importer process can get.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx

from importer.simulator.app import MEDIA_PLAYED_PATH
from importer.simulator.config import SimulatorConfig
from importer.simulator.process import SimulatorProcess


async def _run(url: str, token: str, total: int, concurrency: int) -> tuple[float, list[float], dict[int, int]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(total))

    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:

        async def worker() -> None:
            for i in counter:
                event = {
                    "mediaType": "VIDEO",
                    "sessionId": f"load-{i}",
                    "occurredTimestamp": 1_700_000_000_000 + i,
                    "state": "STARTED",
                    "contactId": 1 + i % 1000,
                    "externalId": f"media-{i % 50}",
                }
                t0 = time.perf_counter()
                response = await client.post(MEDIA_PLAYED_PATH, json=event)
                latencies.append(time.perf_counter() - t0)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests to send (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent connections (default: %(default)s)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulator latency per answer")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="simulator latency jitter")
    args = parser.parse_args(argv)

    config = SimulatorConfig(burst=0, latency_ms=args.latency_ms, jitter_ms=args.jitter_ms)
    with SimulatorProcess(config) as sim:
        # A short warm-up so connection set-up is not in the figure.
        asyncio.run(_run(sim.url, sim.token, args.concurrency * 4, args.concurrency))
        with httpx.Client(base_url=sim.url) as http:
            http.post("/__sim/reset")
        elapsed, latencies, statuses = asyncio.run(_run(sim.url, sim.token, args.requests, args.concurrency))
        with httpx.Client(base_url=sim.url) as http:
            stats = http.get("/__sim/stats").json()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, latency {args.latency_ms:g} ms "
        f"+ jitter {args.jitter_ms:g} ms: {args.requests / elapsed:,.0f} requests/s; "
        f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99:.1f} ms; "
        f"statuses {statuses}; server accepted {stats['accepted_events']}, "
        f"max in flight {stats['max_in_flight']}"
    )
    ok = statuses.get(200) == args.requests == stats["accepted_events"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
