"""Measure the simulator's throughput: ``python -m importer.simulator.loadtest``.

The server runs in a child process so that the clients do not share its GIL. Each client process
runs one ``httpx.AsyncClient`` with its share of the concurrent keep-alive connections. The
server's own CPU time per request is printed too: on a small machine httpx, not the server, is
usually what runs out of CPU first, and that figure shows how far the server itself would go.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import statistics
import time

import httpx

from importer.simulator.app import MEDIA_PLAYED_PATH
from importer.simulator.config import SimulatorConfig
from importer.simulator.process import SimulatorProcess


async def _drive(url: str, token: str, first: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    numbers = iter(range(first, first + count))
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            for i in numbers:
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
                if response.status_code != 200:
                    raise RuntimeError(f"unexpected {response.status_code}: {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies


async def _drive_raw(url: str, token: str, first: int, count: int, concurrency: int) -> tuple[float, list[float]]:
    """The same requests from a minimal asyncio HTTP/1.1 client: shows the server's own ceiling."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    numbers = iter(range(first, first + count))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for i in numbers:
            body = json.dumps(
                {
                    "mediaType": "VIDEO",
                    "sessionId": f"load-{i}",
                    "occurredTimestamp": 1_700_000_000_000 + i,
                    "state": "STARTED",
                    "contactId": 1 + i % 1000,
                    "externalId": f"media-{i % 50}",
                }
            ).encode()
            head = (
                f"POST {MEDIA_PLAYED_PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            t0 = time.perf_counter()
            writer.write(head.encode() + body)
            response_head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", response_head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            latencies.append(time.perf_counter() - t0)
            if not response_head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(response_head.decode("latin-1"))
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies


def _client_process(args: tuple[str, str, str, int, int, int]) -> tuple[float, list[float]]:
    kind, url, token, first, count, concurrency = args
    drive = _drive_raw if kind == "raw" else _drive
    return asyncio.run(drive(url, token, first, count, concurrency))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests to send (default: %(default)s)")
    parser.add_argument(
        "--concurrency", type=int, default=64, help="concurrent connections in all (default: %(default)s)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="client processes sharing the connections (default: %(default)s)"
    )
    parser.add_argument(
        "--client",
        choices=("httpx", "raw"),
        default="httpx",
        help="httpx.AsyncClient, or a minimal asyncio client that shows the server's ceiling (default: httpx)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulator latency per answer")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="simulator latency jitter")
    args = parser.parse_args(argv)

    config = SimulatorConfig(burst=0, latency_ms=args.latency_ms, jitter_ms=args.jitter_ms)
    procs, share = args.processes, args.requests // args.processes
    jobs = [(i * share, share, args.concurrency // procs) for i in range(procs)]
    with SimulatorProcess(config) as sim, multiprocessing.get_context("spawn").Pool(procs) as pool:
        warm = [(args.client, sim.url, sim.token, 0, 4 * c, c) for _, _, c in jobs]
        pool.map(_client_process, warm)  # connection set-up and imports stay out of the figure
        httpx.post(sim.url + "/__sim/reset")
        cpu_before = _cpu_seconds(sim.pid)
        started = time.perf_counter()
        results = pool.map(_client_process, [(args.client, sim.url, sim.token, f, n, c) for f, n, c in jobs])
        elapsed = time.perf_counter() - started
        server_cpu = _cpu_seconds(sim.pid) - cpu_before
        stats = httpx.get(sim.url + "/__sim/stats").json()
    sent = share * procs
    latencies = sorted(x for _, lat in results for x in lat)
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
    print(
        f"{sent} requests, {args.concurrency} keep-alive connections in {procs} {args.client} client process(es), "
        f"server latency {args.latency_ms:g} ms + jitter {args.jitter_ms:g} ms:\n"
        f"  {sent / elapsed:,.0f} requests/s; latency p50 {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99:.1f} ms\n"
        f"  server: {server_cpu / sent * 1e6:.0f} µs CPU per request (~{sent / max(server_cpu, 1e-9):,.0f} "
        f"requests/s per core), max in flight {stats['max_in_flight']}, accepted {stats['accepted_events']}"
    )
    return 0 if stats["accepted_events"] == sent else 1


if __name__ == "__main__":
    raise SystemExit(main())
