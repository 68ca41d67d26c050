"""Part M: ``media sync`` of 100,000 new media on the CRM route: requests and peak memory.

The sync runs in a child process (``python -m bench.part_media sync CSV STATE URL``) against the
simulator in another process, so the child's peak RSS (VmHWM, imports included) is the importer's
alone. Two syncs: a fresh account (the listing finds nothing, every media is created 100 a
request), then the same inputs with the state directory lost (every object is found by listing,
100 a page, and none is created). Target: ceil(N/100) list pages + ceil(N/100) creates at most.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import DATA, ROOT
from bench.measure import median, peak_rss_mb
from bench.table import Figure

PART = "M  media sync: 100,000 new media, CRM route"
MAPPING = """fields:
  sessionId: session_id
  externalId: video_id
  mediaType: {const: VIDEO}
  contactUtk: {template: 'utk-{session_id}'}
events:
  - {state: STARTED, timestamp: started_at}
media:
  api: crm
  object_types: {VIDEO: p424242_Videos}
  title: title
  duration: {column: seconds, unit: s}
  file_url: url
  oembed_url: {template: 'https://player.example.com/oembed?url={url}'}
"""


def measure(media: int, repeat: int, log: Callable[[str], None]) -> tuple[list[Figure], dict[str, Any]]:
    from importer.simulator import SimulatorConfig, SimulatorProcess

    data = DATA / f"media-{media}.csv"
    _inputs(data, media)
    mapping = DATA / "media-mapping.yaml"
    mapping.write_text(MAPPING, encoding="utf-8")
    runs = []
    for rep in range(1, repeat + 1):
        state = DATA / "media-state"
        shutil.rmtree(state, ignore_errors=True)
        with SimulatorProcess(SimulatorConfig(burst=0)) as sim:
            log(f"media sync of {media:,} new media (run {rep}/{repeat}) ...")
            fresh = _child(["sync", str(data), str(mapping), str(state), sim.url], sim.token)
            shutil.rmtree(state)
            log("  again with the state directory lost ...")
            lost = _child(["sync", str(data), str(mapping), str(state), sim.url], sim.token)
        runs.append({"fresh": fresh, "state_lost": lost})
        log(f"  fresh: {fresh['requests']} in {fresh['wall_s']:.1f} s, peak {fresh['peak_rss_mb']:.0f} MB; "
            f"state lost: {lost['requests']}")  # fmt: skip
    pages = creates = math.ceil(media / 100)
    fresh_req = [sum(r["fresh"]["requests"].values()) for r in runs]
    lost_list = [r["state_lost"]["requests"]["list"] for r in runs]
    rss = [r["fresh"]["peak_rss_mb"] for r in runs]
    wall = [r["fresh"]["wall_s"] for r in runs]
    first = runs[0]["fresh"]["requests"]
    figures = [
        Figure(PART, f"requests, fresh account ({first['list']} list + {first['create']} create)", median(fresh_req),
               "", fresh_req, target=f"≤ {pages + creates:,} ({pages:,} + {creates:,})",
               ok=max(fresh_req) <= pages + creates and first["create"] == creates),
        Figure(PART, "list pages, state directory lost (0 creates)", median(lost_list), "", lost_list,
               target=f"≤ {pages:,}", ok=max(lost_list) <= pages + 1
               and all(r["state_lost"]["requests"]["create"] == 0 for r in runs)),
        Figure(PART, "sync wall time, fresh account (simulator, no rate limit)", median(wall), "s", wall),
        Figure(PART, "sync peak RSS, fresh account (imports included)", median(rss), "MB", rss),
    ]  # fmt: skip
    return figures, {"media": media, "runs": runs}


def _inputs(path: Path, media: int) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["session_id", "video_id", "title", "url", "seconds", "started_at"])
        for i in range(media):
            writer.writerow([f"s-{i}", f"video-{i:07d}", f"Video number {i}", f"https://cdn.example.com/v/{i}.mp4",
                             60 + i % 3600, "2025-03-01T10:00:00Z"])  # fmt: skip
    tmp.replace(path)


def _child(args: list[str], token: str) -> dict[str, Any]:
    import os

    cmd = [sys.executable, "-m", "bench.part_media", *args]
    env = {**os.environ, "HUBSPOT_ACCESS_TOKEN": token}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- in the child ------------------------------------------------------------------------------------
def sync(data: str, mapping: str, state: str, url: str) -> dict[str, Any]:
    import os

    from importer.hubspot.auth import Credentials
    from importer.mapping.spec import load_mapping
    from importer.run.media import sync_command
    from importer.run.options import MediaOptions, RunOptions
    from importer.run.pipeline import Pipeline

    started = time.perf_counter()
    options = RunOptions(base_url=url, state_dir=state, rate=None, concurrency=8)
    report = sync_command(Pipeline(load_mapping(mapping), [data]), options,
                          Credentials(os.environ["HUBSPOT_ACCESS_TOKEN"]), MediaOptions())  # fmt: skip
    wall = time.perf_counter() - started
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} media failed, e.g. {next(iter(report.failed.items()))}")
    return {"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "requests": dict(report.requests),
            "created": report.created, "found": report.found}  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "sync":
        print(json.dumps(sync(*sys.argv[2:6])))
