"""The mapping's media: section: validation with YAML paths, aggregation over batches, required properties."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from support import Cli

from importer.errors import MappingError
from importer.mapping.media import NO_FILE_URL, NO_OEMBED, NO_TITLE, MediaCollector, MediaTable, describe
from importer.mapping.spec import parse_mapping
from importer.mapping.values import Frame

BASE: dict[str, Any] = {
    "fields": {"sessionId": "s", "externalId": "ext", "mediaType": {"column": "kind", "upper": True}},
    "events": [{"state": "STARTED", "timestamp": "t"}],
}


def _mapping(media: Any, **extra: Any) -> Any:
    return parse_mapping({**BASE, **extra, "media": media})


def test_every_problem_of_the_media_section_is_reported_with_its_path() -> None:
    with pytest.raises(MappingError) as info:
        _mapping({"titel": "name", "duration": {"column": "d", "unit": "sec"}, "api": "crmm",
                  "object_types": {"VIDEOS": "2-1"}, "file_url": {"column": ""}})  # fmt: skip
    text = str(info.value)
    assert "media.titel: unknown key 'titel' (did you mean 'title'?)" in text
    assert "media.title: required" in text
    assert "media.duration.unit: unknown unit 'sec'" in text
    assert "media.api: unknown api 'crmm' (did you mean 'crm'?)" in text
    assert "media.object_types.VIDEOS: unknown media type 'VIDEOS' (did you mean 'VIDEO'?)" in text
    assert "media.file_url.column: expected a column name" in text


def test_a_media_section_needs_an_external_id_rule() -> None:
    doc = {**BASE, "fields": {"sessionId": "s", "mediaType": {"const": "VIDEO"}, "mediaBridgeId": "m"},
           "media": {"title": "name"}}  # fmt: skip
    with pytest.raises(MappingError, match="media: media objects are described per externalId"):
        parse_mapping(doc)


def test_media_columns_are_read_with_the_rest() -> None:
    mapping = _mapping({"title": {"coalesce": ["name", "fallback"]}, "poster_url": {"template": "{base}/p.jpg"}})
    assert {"name", "fallback", "base", "ext", "kind"} <= set(mapping.top_columns())


def _batch(mapping: Any, rows: dict[str, list[Any]], first_row: int) -> pa.Table:
    table = pa.table(rows)
    numbers = pa.array(range(first_row, first_row + table.num_rows), pa.int64())
    return describe(mapping, Frame(table, table.num_rows, {}), "plays.csv", numbers)


def test_first_non_empty_value_and_longest_duration_win_across_batches() -> None:
    mapping = _mapping({"title": "name", "duration": {"column": "secs", "unit": "s"}, "file_url": "url"})
    collector = MediaCollector()
    collector.add(_batch(mapping, {"s": ["a", "b", "c"], "ext": ["m1", "m2", "m1"], "kind": ["video", "image", "x"],
                                   "name": ["", "Two", "One"], "secs": ["10", "5", "12.5"], "url": [None, "u2", "u1"],
                                   "t": ["1", "2", "3"]}, 1))  # fmt: skip
    collector.add(_batch(mapping, {"s": ["d", "e"], "ext": ["m2", "m1"], "kind": ["image", "video"],
                                   "name": ["Later", "Later"], "secs": ["50", "1"], "url": ["u9", "u9"],
                                   "t": ["4", "5"]}, 4))  # fmt: skip
    rows = {r["externalId"]: r for r in collector.table().table.to_pylist()}
    assert rows["m1"]["title"] == "One" and rows["m1"]["duration"] == 12_500 and rows["m1"]["file_url"] == "u1"
    assert rows["m1"]["mediaType"] == "VIDEO" and (rows["m1"]["_source"], rows["m1"]["_row"]) == ("plays.csv", 1)
    assert rows["m2"]["title"] == "Two" and rows["m2"]["duration"] == 50_000 and rows["m2"]["file_url"] == "u2"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_aggregation_matches_a_plain_reading_of_the_rows_in_order(seed: int) -> None:
    # Random rows over a few media, with blanks, in batches merged and compacted as a long input's
    # are: each media takes its first non-empty title and URL, its longest duration, its first row.
    rng = random.Random(seed)
    mapping = _mapping({"title": "name", "duration": {"column": "secs", "unit": "s"}, "file_url": "url"})
    collector = MediaCollector(compact_rows=500)  # compacts now and then, as a long input does
    expected: dict[str, dict[str, Any]] = {}
    row = 1
    for _ in range(12):
        n = rng.randint(1, 400)
        batch: dict[str, list[Any]] = {k: [] for k in ("s", "ext", "kind", "name", "secs", "url", "t")}
        for i in range(n):
            ext = f"m{rng.randrange(150)}"
            name = rng.choice(["", "", f"T{row + i}"])
            secs = rng.choice(["", str(rng.randint(0, 5000))])
            url = rng.choice([None, f"u{row + i}"])
            for key, value in zip(batch, [f"s{row + i}", ext, "video", name, secs, url, "1"], strict=True):
                batch[key].append(value)
            got = expected.setdefault(ext, {"title": None, "duration": None, "file_url": None, "_row": row + i})
            got["title"] = got["title"] or (name or None)
            got["file_url"] = got["file_url"] or url
            if secs:
                got["duration"] = max(got["duration"] or 0, int(secs) * 1000)
        collector.add(_batch(mapping, batch, row))
        row += n
    table = collector.table().table
    fields = ("title", "duration", "file_url", "_row")
    assert {r["externalId"]: {k: r[k] for k in fields} for r in table.to_pylist()} == expected
    assert table.column("externalId").to_pylist() == list(expected)  # in order of first appearance


def test_distinct_media_past_the_limit_are_refused_with_a_hint() -> None:
    mapping = _mapping({"title": "name"})
    collector = MediaCollector(limit=3)
    collector.add(_batch(mapping, {"s": list("abcd"), "ext": ["1", "2", "3", "4"], "kind": ["video"] * 4,
                                   "name": list("wxyz"), "t": ["1"] * 4}, 1))  # fmt: skip
    with pytest.raises(Exception, match="more than 3 distinct media"):
        collector.table()


def test_required_properties_depend_on_the_type_and_the_route() -> None:
    text = pa.nulls(5, pa.string())
    table = pa.table(
        {
            "externalId": ["v", "a", "i", "d", "n"],
            "mediaType": ["VIDEO", "AUDIO", "IMAGE", "DOCUMENT", "VIDEO"],
            "title": ["t", "t", "t", "t", None],
            "duration": pa.nulls(5, pa.int64()),
            "oembed_url": [None, "o", None, None, "o"],
            "file_url": text,
            "thumbnail_url": text,
            "poster_url": text,
            "details_page_link": text,
            "_source": ["f"] * 5,
            "_row": [1, 2, 3, 4, 5],
        }
    )
    media = MediaTable(table)
    assert media.problems("crm").to_pylist() == [NO_OEMBED, None, NO_FILE_URL, None, NO_TITLE]
    assert media.problems("objects").to_pylist() == [None, None, NO_FILE_URL, None, NO_TITLE]


def test_check_lists_media_hubspot_would_refuse_with_samples_and_their_events_invalid(tmp_path: Path, cli: Cli) -> None:
    data = tmp_path / "plays.csv"
    data.write_text("s,ext,kind,t,name,url\na,v1,video,2025-01-01T00:00:00Z,,x\nb,v1,video,2025-01-01T00:00:00Z,,\n"
                    "c,i1,image,2025-01-01T00:00:00Z,Pic,\nd,v2,video,2025-01-01T00:00:00Z,Film,u\n")  # fmt: skip
    cli.use_mapping("fields: {sessionId: s, externalId: ext, mediaType: {column: kind, upper: true}, contactUtk: s}\n"
                    "events: [{state: STARTED, timestamp: t}]\n"
                    "media: {api: objects, title: name, file_url: url}\n")  # fmt: skip
    code, report = cli.check_json(data)
    assert code == 1
    media = report["media_objects"]
    assert media["distinct"] == 3 and media["invalid"] == 2 and media["to_create"] == 1
    assert media["invalid_by_reason"] == {NO_TITLE: 1, NO_FILE_URL: 1}
    assert report["invalid_by_reason"] == {f"externalId: {NO_TITLE}": 2, f"externalId: {NO_FILE_URL}": 1}
    code, out, _ = cli("check", data, "-m", cli.mapping, "--state-dir", cli.state)
    assert f"media: {NO_TITLE}" in out and f"e.g. {data}:1 externalId='v1'" in out
    assert f"e.g. {data}:3 externalId='i1'" in out
