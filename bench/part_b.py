"""Part B: sending against the simulator, which runs in a child process on loopback.

(a) pacing: burst ``limit`` per ``window`` and N events; wall time against the ideal N / limit
    windows, and the 429s the server counted. Once with ``--rate`` set to the server's limit,
    once starting from the default rate and adapting to the rate-limit headers.
(b) latency: a fixed answer latency L, no limit, C concurrent requests: events/s against the
    ideal C / L, and against a sequential pandas + ``httpx.Client`` loop.
(c) the simulator's own request rate with 64 keep-alive clients and no latency.

Each run gets a fresh state directory and a reset simulator; the client runs in its own process.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.data import send_input
from bench.measure import machine_busy_s, median, process_cpu_s, run_worker
from bench.table import Figure
from importer.simulator import SimulatorClient, SimulatorConfig, SimulatorProcess

PART = "B  send: against the simulator on loopback (separate processes)"
PACE_SLACK = 0.02
MAX_429_SHARE = 0.001
LATENCY_SHARE = 0.90
PLAYED_PATH = "/media-bridge/v1/events/media-played"


def _send(sim: SimulatorProcess, path: Path, work: Path, **opts: Any) -> dict[str, Any]:
    """One ``Runner`` run in a fresh process with a fresh state directory, then the server's stats."""
    client = SimulatorClient(sim.url)
    try:
        client.reset()
        state = work / f"state-{time.monotonic_ns()}"
        args = ["send", str(path), "--url", sim.url, "--token", sim.token, "--state-dir", str(state)]
        args += ["--results", str(state) + ".results.csv"]
        for key, value in opts.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        result = run_worker(args, also_ours=[sim.pid])
        result["server"] = stats = client.stats()
        result["server_span_s"] = _span(client, stats["accepted_events"])
        return result
    finally:
        client.close()


def _span(client: SimulatorClient, accepted: int) -> float | None:
    """Seconds from the first to the last accepted event, as the server saw them."""
    if accepted < 2:
        return None
    first = client.events(limit=1)[0]["receivedAtMs"]
    last = client.events(since=accepted - 1, limit=1)[0]["receivedAtMs"]
    return float(last - first) / 1000


def _pacing(
    events: int, limit: int, window_ms: int, repeat: int, work: Path, log: Callable[[str], None]
) -> tuple[list[Figure], dict[str, Any]]:
    path = send_input(events, log)
    ideal = events / limit * window_ms / 1000
    variants = {
        f"--rate {limit}/{window_ms / 1000:g}s": {"rate": f"{limit}/{window_ms / 1000:g}s"},
        "default rate, adapted from headers": {"rate": "default"},
    }
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    config = SimulatorConfig(burst=limit, window_ms=window_ms)
    with SimulatorProcess(config) as sim:
        for rep in range(1, repeat + 1):
            for name, opts in variants.items():
                log(f"(a) {events:,} events, server {limit} per {window_ms} ms, client {name} (run {rep}/{repeat}) ...")
                # Let the previous run's window drain on the client side of the wire too.
                time.sleep(window_ms / 1000)
                r = _send(sim, path, work, **opts)
                raw[name].append(r)
                log(
                    f"  {r['summary']['counts']['sent']:,} sent in {r['wall_s']:.2f} s "
                    f"(server saw first→last {r['server_span_s']} s), 429s: {_429(r)}, final rate {r['final_rate']}"
                )
    out: list[Figure] = []
    for name, runs in raw.items():
        walls = [r["wall_s"] for r in runs]
        wall = median(walls)
        shares = [_429(r) / events for r in runs]
        sent_ok = all(
            r["summary"]["counts"]["sent"] == events and r["server"]["accepted_events"] == events for r in runs
        )
        out.append(
            Figure(
                PART,
                f"(a) {name}: wall time",
                wall,
                "s",
                walls,
                baseline=f"ideal {ideal:g} s",
                ratio=wall / ideal,
                target=f"≤ {1 + PACE_SLACK:g}× ideal",
                ok=wall <= ideal * (1 + PACE_SLACK) and sent_ok,
                note=f"(a) {name}: {events:,} events, server burst {limit} per {window_ms} ms, concurrency 8; "
                f"ideal = N / limit = {ideal:g} s; a rolling window allows one burst at t=0, so the floor is "
                f"{ideal - window_ms / 1000:g} s. The server saw first → last request in "
                f"{median([r['server_span_s'] or 0 for r in runs]):.2f} s (median). All {events:,} accepted exactly "
                f"once: {'yes' if sent_ok else 'NO'}. Final client rate {runs[-1]['final_rate']}",
            )
        )
        share = median(shares) * 100
        count = median([_429(r) for r in runs])
        out.append(
            Figure(
                PART,
                f"(a) {name}: 429s (median {count:g} of {events:,})",
                share,
                "%",
                [s * 100 for s in shares],
                target=f"≤ {MAX_429_SHARE * 100:g}%",
                ok=median(shares) <= MAX_429_SHARE,
            )
        )
    return out, {"events": events, "limit": limit, "window_ms": window_ms, "ideal_s": ideal, "runs": raw}


def _429(run: dict[str, Any]) -> int:
    return int(run["server"]["by_status"].get("429", 0))


def _latency(
    events: int,
    seq_events: int,
    concurrency: int,
    latency_ms: float,
    repeat: int,
    work: Path,
    log: Callable[[str], None],
) -> tuple[list[Figure], dict[str, Any]]:
    path = send_input(events, log)
    ideal = concurrency / (latency_ms / 1000)
    raw: dict[str, list[dict[str, Any]]] = {"runner": [], "sequential": []}
    with SimulatorProcess(SimulatorConfig(burst=0, latency_ms=latency_ms)) as sim:
        for rep in range(1, repeat + 1):
            log(f"(b) {events:,} events, latency {latency_ms:g} ms, concurrency {concurrency} (run {rep}/{repeat}) ...")
            r = _send(sim, path, work, rate="none", concurrency=concurrency)
            raw["runner"].append(r)
            log(
                f"  {r['summary']['counts']['sent']:,} sent in {r['wall_s']:.2f} s = "
                f"{r['summary']['counts']['sent'] / r['wall_s']:,.0f} events/s, "
                f"server max in flight {r['server']['max_in_flight']}"
            )
            log(f"(b) sequential baseline, {seq_events} events (run {rep}/{repeat}) ...")
            client = SimulatorClient(sim.url)
            client.reset()
            client.close()
            args = ["seqsend", str(path), "--url", sim.url, "--token", sim.token, "--limit", str(seq_events)]
            s = run_worker(args, also_ours=[sim.pid])
            raw["sequential"].append(s)
            log(f"  {s['sent']} sent in {s['wall_s']:.2f} s = {s['sent'] / s['wall_s']:,.1f} events/s")
    rates = [r["summary"]["counts"]["sent"] / r["wall_s"] for r in raw["runner"]]
    seq_rates = [s["sent"] / s["wall_s"] for s in raw["sequential"]]
    rate, seq = median(rates), median(seq_rates)
    sent_ok = all(r["summary"]["counts"]["sent"] == events for r in raw["runner"])
    out = [
        Figure(
            PART,
            "(b) sequential baseline: pandas + httpx.Client",
            seq,
            "events/s",
            seq_rates,
            baseline=f"ideal 1/L = {1000 / latency_ms:g}/s",
            ratio=seq / (1000 / latency_ms),
            note=f"(b) the sequential loop posts {seq_events} events one at a time (at {latency_ms:g} ms each "
            f"the full {events:,} would take {events * latency_ms / 1000 / 60:.0f} min)",
        ),
        Figure(
            PART,
            f"(b) run, concurrency {concurrency}, no rate limit",
            rate,
            "events/s",
            rates,
            baseline=f"ideal C/L = {ideal:,.0f}/s",
            ratio=rate / ideal,
            target=f"≥ {LATENCY_SHARE:.0%} of C/L",
            ok=rate >= LATENCY_SHARE * ideal and sent_ok,
            note=f"(b) {events:,} events, server latency {latency_ms:g} ms, no limit; events/s = sent / wall time "
            f"of the whole run (start-up, reading and journal included); client CPU "
            f"{median([r['cpu_s'] / events * 1e6 for r in raw['runner']]):.0f} µs per event; "
            f"all sent: {'yes' if sent_ok else 'NO'}",
        ),
        Figure(
            PART,
            "(b) run vs the sequential baseline",
            rate,
            "events/s",
            baseline=f"{seq:,.1f} events/s",
            ratio=rate / seq,
        ),
    ]
    return out, {"events": events, "latency_ms": latency_ms, "concurrency": concurrency, "ideal": ideal, "runs": raw}


async def _connection(host: str, port: int, token: str, numbers: Iterator[int], latencies: list[float]) -> Counter[int]:
    """One keep-alive connection posting events back to back with hand-built HTTP/1.1 requests.

    Cheap on purpose (tens of µs per request): the figure must be the server's, not the client's.
    """
    statuses: Counter[int] = Counter()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for i in numbers:
            body = (
                f'{{"mediaType":"VIDEO","sessionId":"load-{i}","state":"STARTED",'
                f'"occurredTimestamp":{1_735_689_600_000 + i},"contactId":{1 + i % 1000},'
                f'"externalId":"media-{i % 50}"}}'
            ).encode()
            head = (
                f"POST {PLAYED_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            t0 = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readuntil(b"\r\n")
            headers = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in headers.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            statuses[int(status_line.split()[1])] += 1
    finally:
        writer.close()
    return statuses


async def _hammer(url: str, token: str, total: int, concurrency: int) -> tuple[float, list[float], Counter[int]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    numbers = iter(range(total))  # shared: each connection takes the next number
    latencies: list[float] = []
    started = time.perf_counter()
    results = await asyncio.gather(*(_connection(host, port, token, numbers, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return elapsed, latencies, sum(results, Counter())


def _simulator(requests: int, repeat: int, log: Callable[[str], None]) -> tuple[list[Figure], dict[str, Any]]:
    concurrency = 64
    raw: list[dict[str, Any]] = []
    with SimulatorProcess(SimulatorConfig(burst=0)) as sim:
        asyncio.run(_hammer(sim.url, sim.token, concurrency * 8, concurrency))  # warm-up
        for rep in range(1, repeat + 1):
            with SimulatorClient(sim.url) as client:
                client.reset()
            log(f"(c) simulator throughput, {requests:,} requests, {concurrency} connections (run {rep}/{repeat}) ...")
            busy0, me0, sim0 = machine_busy_s(), process_cpu_s(os.getpid()), process_cpu_s(sim.pid)
            elapsed, latencies, statuses = asyncio.run(_hammer(sim.url, sim.token, requests, concurrency))
            me, server = process_cpu_s(os.getpid()) - me0, process_cpu_s(sim.pid) - sim0
            other = machine_busy_s() - busy0 - me - server
            with SimulatorClient(sim.url) as client:
                stats = client.stats()
            latencies.sort()
            raw.append(
                {
                    "requests": requests,
                    "wall_s": elapsed,
                    "rps": requests / elapsed,
                    "p50_ms": statistics.median(latencies) * 1000,
                    "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000,
                    "statuses": {str(k): v for k, v in statuses.items()},
                    "server_cpu_s": server,
                    "client_cpu_s": me,
                    "server_max_in_flight": stats["max_in_flight"],
                    "accepted": stats["accepted_events"],
                    "other_load_cores": max(0.0, other / elapsed),
                }
            )
            r = raw[-1]
            log(
                f"  {r['rps']:,.0f} requests/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; server cpu "
                f"{server / requests * 1e6:.0f} µs/request, client {me / requests * 1e6:.0f} µs/request"
            )
    rps = [r["rps"] for r in raw]
    per_core = [r["requests"] / r["server_cpu_s"] for r in raw if r["server_cpu_s"] > 0]
    all_ok = all(r["statuses"] == {"200": requests} and r["accepted"] == requests for r in raw)
    figs = [
        Figure(
            PART,
            "(c) simulator throughput, 64 keep-alive connections",
            median(rps),
            "requests/s",
            rps,
            note=f"(c) a minimal asyncio HTTP/1.1 client (64 keep-alive connections, one process) against the "
            f"simulator process, no latency; p50 {median([r['p50_ms'] for r in raw]):.1f} ms, "
            f"p99 {median([r['p99_ms'] for r in raw]):.1f} ms; all answered 200 and recorded: "
            f"{'yes' if all_ok else 'NO'}; server max in flight {max(r['server_max_in_flight'] for r in raw)}",
        ),
    ]
    if per_core:
        figs.append(
            Figure(PART, "(c) simulator requests per server CPU-second", median(per_core), "requests/s/core", per_core)
        )
    return figs, {"requests": requests, "concurrency": concurrency, "runs": raw}


def measure(
    *,
    pace_events: int,
    pace_limit: int,
    pace_window_ms: int,
    latency_events: int,
    seq_events: int,
    concurrency: int,
    latency_ms: float,
    sim_requests: int,
    repeat: int,
    log: Callable[[str], None],
) -> tuple[list[Figure], dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="media-import-bench-"))
    try:
        a, raw_a = _pacing(pace_events, pace_limit, pace_window_ms, repeat, work, log)
        b, raw_b = _latency(latency_events, seq_events, concurrency, latency_ms, repeat, work, log)
        c, raw_c = _simulator(sim_requests, repeat, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return a + b + c, {"pacing": raw_a, "latency": raw_b, "simulator": raw_c}
