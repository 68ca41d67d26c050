"""Vendor exports (Mux Data, GA4 BigQuery, Wistia, OP3) as the presets in mappings/ read them.

Written as the vendors write them, quirks included, each with a contacts lookup file for its
preset. Their first rows are "planted": named cases (view_id, event_key…) that tests/presets/
checks one by one; the rest are random rows in the same shape. ``generate.py`` calls
``vendor_samples`` for the committed samples; the same seeds give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent

MARCH_MS = 1_740_787_200_000  # 2025-03-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")
Row = dict[str, Any]


class _Draw:
    """Random draws from ``random.random()`` alone, whose sequence Python keeps stable across versions."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def share(self) -> float:
        return self._rng.random()

    def chance(self, p: float) -> bool:
        return self._rng.random() < p

    def below(self, high: int, low: int = 0) -> int:
        return low + int(self._rng.random() * (high - low))

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]


def iso_ms(ms: int) -> str:
    """``2025-03-01T08:15:30.250Z``: UTC with milliseconds."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_s(ms: int) -> str:
    """``2025-03-01T08:15:30Z``: UTC, whole seconds."""
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_delimited(path: Path, rows: Sequence[Row], header: Sequence[str]) -> None:
    """CSV with the given column order; None is an empty cell."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        for row in rows:
            out.writerow(["" if row.get(h) is None else row[h] for h in header])


def write_tab_joined(path: Path, rows: Sequence[Row], header: Sequence[str]) -> None:
    """TSV as OP3 writes it: values joined by tabs, never quoted (a quote is an ordinary character)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(header) + "\n")
        for row in rows:
            fh.write("\t".join("" if row.get(h) is None else str(row[h]) for h in header) + "\n")


def write_jsonl(path: Path, rows: Sequence[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


# Mux Data daily view export: one row per view, columns alphabetical, the set growing with each
# export version (the extras below are not read by the preset), durations in ms, video_duration
# sometimes blank, boolean columns marking views to skip.
MUX_VIDEOS = (
    ("vid-intro", "Product intro", 240_000),
    ("vid-demo", "Live demo", 120_000),
    ("vid-webinar", "Spring webinar", 300_000),
    ("vid-case", "Customer story", 95_000),
    ("vid-pricing", "Pricing explained", 180_000),
    ("vid-onboard", "Onboarding, part 1", 610_000),
)
MUX_VIEWERS = tuple(f"viewer-{i:03d}" for i in range(1, 41))
MUX_EXTRA = {"custom_1": "plan-pro", "custom_2": "", "player_name": "web-player", "view_has_ad": "false"}


def mux_contact_id(viewer: str) -> int:
    return 20_000 + int(viewer.rsplit("-", 1)[1])


def _mux_row(
    view_id: str, viewer: str | None, video: tuple[str, str, int], start: int, playhead: int, **over: Any
) -> Row:
    """One view from ``start`` (ms) that reached ``playhead`` (ms); ``over`` replaces columns."""
    video_id, title, duration = video
    end = start + playhead + 4_000
    row: Row = {
        **MUX_EXTRA,
        "asset_id": f"asset-{video_id.removeprefix('vid-')}",
        "exit_before_video_start": "false",
        "page_type": "watchpage",
        "page_url": f"https://www.example.com/videos/{video_id}",
        "player_source_duration": duration + 480,
        "player_source_url": f"https://stream.mux.com/{video_id}.m3u8",
        "video_duration": duration,
        "video_id": video_id,
        "video_startup_failure": "false",
        "video_title": title,
        "view_end": iso_ms(end),
        "view_id": view_id,
        "view_max_playhead_position": playhead,
        "view_playing_time": playhead,
        "view_start": iso_ms(start),
        "viewer_os_family": "macOS",
        "viewer_user_id": viewer,
        "watch_time": end - start,
        "weighted_average_bitrate": "2500000.0",
    }
    row.update(over)
    return row


def mux_views(rows: int = 300, seed: int = 11) -> tuple[list[Row], list[Row]]:
    """The view export and the contacts lookup (viewer_user_id → contact_id)."""
    intro, demo, webinar = MUX_VIDEOS[0], MUX_VIDEOS[1], MUX_VIDEOS[2]
    iframe = {"page_type": "iframe", "page_url": "https://embed.example.net/player/vid-demo"}
    t = MARCH_MS + 9 * 3_600_000 + 250  # 2025-03-01T09:00:00.250Z
    planted = [
        _mux_row("mux-viewed", "viewer-001", intro, t, 180_000),  # 75% of 240 s
        _mux_row("mux-started-only", "viewer-002", intro, t + 60_000, 60_000),  # 25%
        _mux_row("mux-half", "viewer-003", demo, t + 120_000, 60_000),  # exactly 50% of 120 s
        # No video_duration: the share is of player_source_duration (300 480 ms): 151 000 is 50.3%.
        _mux_row("mux-no-duration", "viewer-004", webinar, t + 180_000, 151_000, video_duration=None),
        _mux_row("mux-exit", "viewer-005", intro, t + 240_000, 0, exit_before_video_start="true"),
        _mux_row("mux-startup-failure", "viewer-006", intro, t + 300_000, 0, video_startup_failure="true"),
        _mux_row("mux-asset-only", "viewer-007", demo, t + 360_000, 10_000, video_id=None, **iframe),
        _mux_row("mux-unknown-viewer", "viewer-999", intro, t + 420_000, 200_000),
        _mux_row("mux-anonymous", None, intro, t + 480_000, 200_000),
    ]
    draw = _Draw(seed)
    out = list(planted)
    start = MARCH_MS + 86_400_000
    for i in range(rows - len(planted)):
        start += draw.below(4 * 3_600_000, 60_000)
        video = draw.pick(MUX_VIDEOS)
        exited = draw.chance(0.03)
        over: Row = {}
        if exited:
            over["exit_before_video_start"] = "true"
        elif draw.chance(0.02):
            over["video_startup_failure"] = "true"
        if draw.chance(0.15):
            over["video_duration"] = None
        if draw.chance(0.05):
            over["video_id"] = None
        if draw.chance(0.3):
            over["page_type"] = "iframe"
            over["page_url"] = f"https://embed.example.net/player/{video[0]}"
        viewer = None if draw.chance(0.04) else draw.pick(MUX_VIEWERS)
        playhead = 0 if exited else int(video[2] * draw.share())
        out.append(_mux_row(f"mux-{i:04d}", viewer, video, start, playhead, **over))
    contacts: list[Row] = [{"viewer_user_id": v, "contact_id": mux_contact_id(v)} for v in MUX_VIEWERS]
    contacts[9]["contact_id"] = f"{contacts[9]['contact_id']}.0"  # saved from a spreadsheet
    return out, contacts


# GA4 → BigQuery export as JSON Lines: one row per event, event_timestamp in µs, parameters in
# event_params. BigQuery's own JSON export writes every INT64 as a string and every value record
# with its four fields; other tools write numbers and only the field that is set. video_percent
# sometimes arrives as a string parameter; tags fire twice now and then.
GA4_VIDEOS = (
    ("https://www.youtube.com/watch?v=intro01", "Product intro", 240),
    ("https://www.youtube.com/watch?v=demo002", "Live demo", 120),
    ("https://www.youtube.com/watch?v=webin03", "Spring webinar", 300),
    ("https://www.youtube.com/watch?v=story04", "Customer story", 95),
)
GA4_USERS = tuple(
    (f"u-{1000 + i}" if i <= 16 else None, f"{1_204_578_000 + 7_919 * i}.{1_740_000_000 + 3_600 * i}")
    for i in range(1, 25)
)  # (user_id, user_pseudo_id): the first 16 signed in
GA4_PROGRESS = (10, 25, 50, 75)


def _ga4_param(key: str, value: Any, kind: str, bigquery: bool) -> Row:
    if bigquery:
        record: Row = {"string_value": None, "int_value": None, "float_value": None, "double_value": None}
        record[kind] = str(value) if kind == "int_value" else value
    else:
        record = {kind: value}
    return {"key": key, "value": record}


def ga4_event(
    name: str,
    us: int,
    user: tuple[str | None, str],
    ga_session: int,
    video: tuple[str, str, int],
    *,
    bigquery: bool,
    percent: int | str | None = None,
) -> Row:
    """One event line; ``percent`` as text is sent as a string parameter, as some tags do."""
    url, title, duration = video
    params = [
        _ga4_param("ga_session_id", ga_session, "int_value", bigquery),
        _ga4_param("page_location", "https://www.example.com/learn", "string_value", bigquery),
        _ga4_param("page_title", "Learn | Example", "string_value", bigquery),
    ]
    if name.startswith("video_"):
        params += [
            _ga4_param("video_provider", "youtube", "string_value", bigquery),
            _ga4_param("video_title", title, "string_value", bigquery),
            _ga4_param("video_url", url, "string_value", bigquery),
            _ga4_param("video_duration", duration, "int_value", bigquery),
            _ga4_param("visible", "true", "string_value", bigquery),
        ]
    if percent is not None:
        kind = "string_value" if isinstance(percent, str) else "int_value"
        params.append(_ga4_param("video_percent", percent, kind, bigquery))
        current = duration * int(percent) / 100
        params.append(_ga4_param("video_current_time", current, "double_value", bigquery))
    day = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y%m%d")
    row: Row = {
        "event_date": day,
        "event_timestamp": str(us) if bigquery else us,
        "event_name": name,
        "event_params": params,
        "user_pseudo_id": user[1],
    }
    if user[0] is not None or bigquery:
        row["user_id"] = user[0]
    row.update({"platform": "WEB", "device": {"category": "desktop"}, "geo": {"country": "France"}})
    return row


def _ga4_session(
    draw: _Draw, start_us: int, user: tuple[str | None, str], video: tuple[str, str, int], bigquery: bool
) -> list[Row]:
    ga_session = start_us // 1_000_000 - draw.below(600)
    watched = draw.share()
    lines = [ga4_event("video_start", start_us, user, ga_session, video, bigquery=bigquery)]
    for pct in GA4_PROGRESS:
        if watched * 100 >= pct:
            at = start_us + video[2] * pct * 10_000 + draw.below(1_000_000)
            percent: int | str = str(pct) if draw.chance(0.15) else pct
            lines.append(ga4_event("video_progress", at, user, ga_session, video, bigquery=bigquery, percent=percent))
    if watched >= 0.95:
        at = start_us + video[2] * 1_000_000 + draw.below(1_000_000)
        lines.append(ga4_event("video_complete", at, user, ga_session, video, bigquery=bigquery, percent=100))
    if draw.chance(0.2):
        lines.insert(0, ga4_event("page_view", start_us - 5_000_000, user, ga_session, video, bigquery=bigquery))
    return lines


def ga4_events(sessions: int = 110, seed: int = 12) -> tuple[list[Row], list[Row], list[Row]]:
    """Two days of events (BigQuery's JSON export, then a numbers-as-numbers one) and the lookup."""
    signed_in, also_signed_in, guest = GA4_USERS[0], GA4_USERS[2], GA4_USERS[20]
    intro, demo, webinar = GA4_VIDEOS[0], GA4_VIDEOS[1], GA4_VIDEOS[2]
    unknown = (None, "999999999.1740787200")
    day1 = (MARCH_MS + 10 * 3_600_000) * 1000 + 123_456  # 2025-03-01T10:00:00.123456Z
    s1, s3 = 1_740_823_000, 1_740_823_500
    g1 = [
        ga4_event("page_view", day1 - 4_000_000, signed_in, s1, intro, bigquery=True),
        ga4_event("video_start", day1, signed_in, s1, intro, bigquery=True),
        *(
            ga4_event("video_progress", day1 + pct * 2_400_000 + 17, signed_in, s1, intro, bigquery=True, percent=pct)
            for pct in GA4_PROGRESS
        ),
        ga4_event("video_complete", day1 + 240_000_000 + 17, signed_in, s1, intro, bigquery=True, percent=100),
        # The same visit, another video: another play session.
        ga4_event("video_start", day1 + 300_000_000, signed_in, s1, demo, bigquery=True),
    ]
    g3_start = ga4_event("video_start", day1 + 600_000_000, also_signed_in, s3, webinar, bigquery=True)
    g3 = [
        g3_start,
        g3_start,  # the tag fired twice
        ga4_event("video_progress", day1 + 750_000_999, also_signed_in, s3, webinar, bigquery=True, percent="50"),
        ga4_event("video_start", day1 + 900_000_000, unknown, s3 + 7, demo, bigquery=True),
    ]
    day2 = (MARCH_MS + 86_400_000 + 10 * 3_600_000) * 1000 + 654_321  # 2025-03-02T10:00:00.654321Z
    s2, s6 = 1_740_909_000, 1_740_909_900
    g2 = [
        ga4_event("video_start", day2, guest, s2, demo, bigquery=False),
        ga4_event("video_progress", day2 + 12_000_000, guest, s2, demo, bigquery=False, percent=10),
        ga4_event("video_progress", day2 + 30_000_000, guest, s2, demo, bigquery=False, percent=25),
        ga4_event("video_start", day2 + 600_000_000, GA4_USERS[1], s6, intro, bigquery=False),
        # Seeked to the end: complete without a progress event at 50%.
        ga4_event("video_complete", day2 + 610_000_000, GA4_USERS[1], s6, intro, bigquery=False, percent=100),
        ga4_event("video_start", day2 + 900_000_000, GA4_USERS[3], s6 + 1, webinar, bigquery=False),
        ga4_event("video_progress", day2 + 1_125_000_000, GA4_USERS[3], s6 + 1, webinar, bigquery=False, percent="75"),
    ]
    draw = _Draw(seed)
    days: list[list[Row]] = [g1 + g3, g2]
    for d, lines in enumerate(days):
        start_us = (MARCH_MS + d * 86_400_000 + 12 * 3_600_000) * 1000
        for _ in range(sessions // 2):
            start_us += draw.below(900_000_000, 30_000_000) + draw.below(1000)
            session = _ga4_session(draw, start_us, draw.pick(GA4_USERS), draw.pick(GA4_VIDEOS), bigquery=d == 0)
            for line in session:
                lines.append(line)
                if draw.chance(0.03):
                    lines.append(line)
    keys = [user_id or pseudo for user_id, pseudo in GA4_USERS]
    contacts: list[Row] = [{"user_id": k, "contact_id": 30_001 + i} for i, k in enumerate(keys)]
    return days[0], days[1], contacts


# Wistia Stats API events: one row per viewing session, as JSON or CSV. percent_viewed is a
# fraction (0.2245) or, in older exports, a percent (22.45); email is null for anonymous visitors.
WISTIA_MEDIA = (
    ("a1b2c3d4e5", "Product intro"),
    ("f6g7h8i9j0", "Live demo"),
    ("k1l2m3n4o5", "Spring webinar"),
    ("p6q7r8s9t0", "Customer story"),
)
WISTIA_PEOPLE = (
    "ana@example.com", "ben@example.com", "chloe@example.org", "dev@example.net", "eve@example.com",
    "farid@example.org", "gus@example.com", "hana@example.net", "ines@example.com", "jon@example.org",
    "kai@example.com", "lea@example.net", "mo@example.com", "nora@example.org", "omar@example.com",
)  # fmt: skip
WISTIA_COLUMNS = (
    "received_at", "event_key", "visitor_key", "embed_url", "percent_viewed", "email", "media_id",
    "media_name", "media_url", "ip", "country", "region", "city",
)  # fmt: skip


def wistia_contact_id(email: str) -> int:
    return 40_000 + WISTIA_PEOPLE.index(email.strip().lower())


def _wistia_row(key: str, at_ms: int, percent: Any, email: str | None, media: tuple[str, str]) -> Row:
    return {
        "received_at": iso_s(at_ms),
        "event_key": key,
        "visitor_key": f"v{hashlib.sha256((email or key).encode()).hexdigest()[:20]}",
        "embed_url": f"https://www.example.com/watch/{media[0]}",
        "percent_viewed": percent,
        "email": email,
        "media_id": media[0],
        "media_name": media[1],
        "media_url": f"https://example.wistia.com/medias/{media[0]}",
        "ip": "203.0.113.7",
        "country": "FR",
        "region": "Ile-de-France",
        "city": "Paris",
    }


def wistia_events(rows: int = 150, seed: int = 13) -> tuple[list[Row], list[Row], list[Row]]:
    """The JSON Lines export, the CSV export (different sessions) and the lookup (email → contact_id)."""
    intro, demo = WISTIA_MEDIA[0], WISTIA_MEDIA[1]
    t = MARCH_MS + 14 * 3_600_000  # 2025-03-01T14:00:00Z
    json_planted = [
        _wistia_row("wistia-fraction-viewed", t, 0.62, "ana@example.com", intro),
        _wistia_row("wistia-percent-viewed", t + 60_000, 62, "ana@example.com", demo),
        _wistia_row("wistia-fraction-started", t + 120_000, 0.2245, "ben@example.com", intro),
        _wistia_row("wistia-percent-started", t + 180_000, 22.45, "ben@example.com", demo),
        _wistia_row("wistia-not-played", t + 240_000, 0, "chloe@example.org", intro),
        _wistia_row("wistia-anonymous", t + 300_000, 0.8, None, intro),
        _wistia_row("wistia-unknown-email", t + 360_000, 0.9, "nobody@example.biz", intro),
        _wistia_row("wistia-email-case", t + 420_000, 0.5, "  Ben@Example.COM ", demo),
        _wistia_row("wistia-whole", t + 480_000, 1.0, "dev@example.net", demo),
    ]
    csv_planted = [
        _wistia_row("wistia-csv-percent-viewed", t + 86_400_000, "75", "eve@example.com", intro),
        _wistia_row("wistia-csv-fraction-started", t + 86_460_000, "0.3", "eve@example.com", demo),
        _wistia_row("wistia-csv-anonymous", t + 86_520_000, "0.9", None, demo),
    ]
    draw = _Draw(seed)
    files = [json_planted, csv_planted]
    for f, out in enumerate(files):
        at = MARCH_MS + (f * 15 + 2) * 86_400_000
        for i in range(rows - len(out)):
            at += draw.below(3 * 3_600_000, 60_000)
            share = 0.0 if draw.chance(0.1) else round(draw.share(), 4)
            percent: Any = share if draw.chance(0.7) else round(share * 100, 2)
            if f == 1:
                percent = f"{percent}"
            email = None if draw.chance(0.4) else draw.pick(WISTIA_PEOPLE)
            out.append(_wistia_row(f"wk{f}{i:04d}{draw.below(10**6):06d}", at, percent, email, draw.pick(WISTIA_MEDIA)))
    contacts: list[Row] = [{"email": e, "contact_id": wistia_contact_id(e)} for e in WISTIA_PEOPLE]
    return files[0], files[1], contacts


# OP3 downloads (TSV): one row per counted download; time in ISO 8601 with ms and Z; bots flagged
# in botType when the export included them.
OP3_COLUMNS = (
    "time", "url", "audienceId", "showUuid", "episodeId", "hashedIpAddress", "agentType", "agentName",
    "deviceType", "deviceName", "referrerType", "referrerName", "botType", "countryCode", "continentCode",
    "regionCode", "regionName", "timezone", "metroCode",
)  # fmt: skip
OP3_SHOW = "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b"
OP3_EPISODES = tuple(
    (hashlib.sha256(f"episode-{n}".encode()).hexdigest()[:32], f"https://op3.dev/e/cdn.example.com/show/ep{n:02d}.mp3")
    for n in range(1, 7)
)
OP3_AUDIENCE = tuple(hashlib.sha256(f"listener-{n}".encode()).hexdigest() for n in range(1, 31))
OP3_APPS = (("app", "Apple Podcasts", "mobile", "iPhone"), ("app", "Spotify", "mobile", "Android Phone"),
            ("app", "Overcast", "mobile", "iPhone"), ("browser", "Chrome", "computer", "Windows Computer"))  # fmt: skip


def op3_contact_id(audience_id: str) -> int:
    return 50_000 + OP3_AUDIENCE.index(audience_id)


def _op3_row(at_ms: int, audience: str, episode: tuple[str, str], app: tuple[str | None, ...], **over: Any) -> Row:
    row: Row = {
        "time": iso_ms(at_ms),
        "url": episode[1],
        "audienceId": audience,
        "showUuid": OP3_SHOW,
        "episodeId": episode[0],
        "hashedIpAddress": f"2:{audience[:16]}",
        "agentType": app[0],
        "agentName": app[1],
        "deviceType": app[2],
        "deviceName": app[3],
        "referrerType": None,
        "referrerName": None,
        "botType": None,
        "countryCode": "US",
        "continentCode": "NA",
        "regionCode": "CA",
        "regionName": "California",
        "timezone": "America/Los_Angeles",
        "metroCode": "807",
    }
    row.update(over)
    return row


def op3_downloads(rows: int = 250, seed: int = 14) -> tuple[list[Row], list[Row]]:
    """The downloads TSV and the lookup (audienceId → contact_id)."""
    t = MARCH_MS + 6 * 3_600_000 + 42  # 2025-03-01T06:00:00.042Z
    bot = ("bot", "Googlebot", None, None)
    planted = [
        _op3_row(t, OP3_AUDIENCE[0], OP3_EPISODES[0], OP3_APPS[0]),
        _op3_row(t + 1_000, OP3_AUDIENCE[1], OP3_EPISODES[0], OP3_APPS[1], metroCode=None),
        _op3_row(t + 2_000, hashlib.sha256(b"stranger").hexdigest(), OP3_EPISODES[1], OP3_APPS[2]),
        _op3_row(t + 3_000, OP3_AUDIENCE[2], OP3_EPISODES[1], bot, botType="bot"),
        # An unknown app: agentName is its raw user agent, written as is, stray quote included.
        _op3_row(t + 4_000, OP3_AUDIENCE[3], OP3_EPISODES[2], ("unknown", '"Breaker/2.3 CFNetwork', None, None)),
    ]
    draw = _Draw(seed)
    out = list(planted)
    at = t + 3_600_000
    for _ in range(rows - len(planted)):
        at += draw.below(2 * 3_600_000, 1_000)
        is_bot = draw.chance(0.05)
        over: Row = {"botType": "bot"} if is_bot else {}
        app = bot if is_bot else draw.pick(OP3_APPS)
        out.append(_op3_row(at, draw.pick(OP3_AUDIENCE), draw.pick(OP3_EPISODES), app, **over))
    contacts: list[Row] = [{"audienceId": a, "contact_id": op3_contact_id(a)} for a in OP3_AUDIENCE]
    return out, contacts


def vendor_samples() -> None:
    """The committed vendor samples, each folder with the contacts lookup of its preset."""
    views, contacts = mux_views()
    write_delimited(HERE / "mux" / "views-2025-03.csv", views, sorted(views[0]))
    write_delimited(HERE / "mux" / "contacts.csv", contacts, ["viewer_user_id", "contact_id"])
    day1, day2, contacts = ga4_events()
    write_jsonl(HERE / "ga4" / "events_20250301.jsonl", day1)
    write_jsonl(HERE / "ga4" / "events_20250302.jsonl", day2)
    write_delimited(HERE / "ga4" / "contacts.csv", contacts, ["user_id", "contact_id"])
    as_json, as_csv, contacts = wistia_events()
    write_jsonl(HERE / "wistia" / "events-2025-03a.jsonl", as_json)
    write_delimited(HERE / "wistia" / "events-2025-03b.csv", as_csv, WISTIA_COLUMNS)
    write_delimited(HERE / "wistia" / "contacts.csv", contacts, ["email", "contact_id"])
    downloads, contacts = op3_downloads()
    write_tab_joined(HERE / "op3" / "downloads-2025-03.tsv", downloads, OP3_COLUMNS)
    write_delimited(HERE / "op3" / "contacts.csv", contacts, ["audienceId", "contact_id"])
