"""Helpers of the media object tests: a play log with known media, its mapping per route, and what the
simulator holds."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from importer.simulator import Simulator

TYPES = ("VIDEO", "AUDIO", "IMAGE", "DOCUMENT")
HEADER = ["session_id", "video_id", "kind", "title", "url", "seconds", "started_at"]


@dataclass
class Plays:
    """A CSV of plays: ``media`` distinct media (m-0 …), each named by several rows."""

    path: Path
    media: dict[str, str]  # externalId -> media type
    titles: dict[str, str]  # externalId -> the first non-empty title of its rows
    longest: dict[str, int]  # externalId -> the longest duration, ms
    sessions: set[str]


def write_plays(path: Path, media: int, rows: int, seed: int = 1, prefix: str = "s") -> Plays:
    rng = random.Random(seed)
    kinds = {f"m-{i}": TYPES[i % len(TYPES)] for i in range(media)}
    titles: dict[str, str] = {}
    longest: dict[str, int] = {}
    lines = []
    for r in range(rows):
        ext = f"m-{r % media if r < 2 * media else rng.randrange(media)}"
        # The first row of a media may have no title when a second row names it: the first non-empty one wins.
        title = "" if r < media and r % 3 == 0 and rows >= 2 * media else f"Title {ext} v{r}"
        if title and ext not in titles:
            titles[ext] = title
        seconds = rng.randint(10, 900)
        longest[ext] = max(longest.get(ext, 0), seconds * 1000)
        lines.append([f"{prefix}-{r}", ext, kinds[ext].lower(), title, f"https://cdn.example.com/{ext}.mp4", seconds,
                      f"2025-03-01T10:{r % 60:02d}:00Z"])  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(lines)
    named = {str(line[1]) for line in lines}
    for ext in named:  # every media has at least one titled row
        assert ext in titles, ext
    return Plays(path, {e: t for e, t in kinds.items() if e in named}, titles, longest, {str(x[0]) for x in lines})


def object_types(sim: Simulator) -> dict[str, str]:
    """The Media Bridge app's object type of each media type, as its object definitions give them."""
    out = {}
    for media_type in TYPES:
        answer = httpx.get(f"{sim.url}/media-bridge/v1/424242/settings/object-definitions/{media_type}",
                           headers={"Authorization": f"Bearer {sim.token}"})  # fmt: skip
        answer.raise_for_status()
        out[media_type] = answer.json()["objectTypeName"]
    return out


def mapping(api: str, types: dict[str, str] | None = None) -> str:
    lines = [
        "fields:",
        "  sessionId: session_id",
        "  externalId: video_id",
        "  mediaType: {column: kind, upper: true}",
        "  contactUtk: {template: 'utk-{session_id}'}",
        "events:",
        "  - state: STARTED",
        "    timestamp: started_at",
        "media:",
        f"  api: {api}",
        "  title: title",
        "  duration: {column: seconds, unit: s}",
        "  file_url: url",
        "  oembed_url: {template: 'https://player.example.com/oembed?url={url}'}",
    ]
    if types:
        lines.append("  object_types:")
        lines.extend(f"    {k}: {v}" for k, v in types.items())
    return "\n".join(lines) + "\n"


def ours(sim: Simulator) -> list[dict[str, Any]]:
    """The simulator's media objects made from the plays (externalId m-…)."""
    objects: list[dict[str, Any]] = sim.client.media()["objects"]
    return [o for o in objects if str(o.get("externalId") or "").startswith("m-")]


def creates(sim: Simulator) -> int:
    return sum(n for route, n in sim.client.media()["requests"].items() if "create" in route)
