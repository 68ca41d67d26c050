"""Value rules end to end: mapping → Plan → Pipeline → payloads and invalid records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importer.errors import InputError

from .helpers import T0, column, csv_file, mapping_doc, ms, run, write_rows


def test_column_and_const(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,title", f"a,1,{T0},Intro")
    doc = mapping_doc({"mediaName": "title", "mediaType": {"const": "audio"}, "pageId": {"const": 5001}})
    out = run(doc, [data], tmp_path)
    assert out.payloads == [
        {
            "mediaType": "AUDIO",
            "sessionId": "a",
            "state": "STARTED",
            "occurredTimestamp": ms("2025-01-01T00:00:00+00:00"),
            "contactId": 1,
            "externalId": "ext-1",
            "mediaName": "Intro",
            "pageId": 5001,
        }
    ]


def test_default_fills_null_and_empty(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,title,page", f"a,1,{T0},Intro,7", f"b,2,{T0},,", f"c,3,{T0},   ,  ")
    doc = mapping_doc(
        {"mediaName": {"column": "title", "default": "Untitled"}, "pageId": {"column": "page", "default": 99}}
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "mediaName") == ["Intro", "Untitled", "Untitled"]
    assert column(out, "pageId") == [7, 99, 99]


def test_coalesce_takes_the_first_non_empty(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,video_id,asset_id",
        f"a,1,{T0},v1,as1",
        f"b,2,{T0},,as2",
        f"c,3,{T0},  ,",
    )
    doc = mapping_doc({"externalId": {"coalesce": ["video_id", "asset_id", {"const": "unknown"}]}})
    out = run(doc, [data], tmp_path)
    assert column(out, "externalId") == ["v1", "as2", "unknown"]


def test_coalesce_over_typed_parquet_columns(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"sid": "a", "cid": 11, "alt": 21, "ts": T0},
        {"sid": "b", "cid": None, "alt": 22, "ts": T0},
    ]
    data = write_rows(tmp_path / "p.parquet", rows)
    out = run(mapping_doc({"contactId": {"coalesce": ["cid", "alt"]}}), [data], tmp_path)
    assert column(out, "contactId") == [11, 22]


MAP_ROWS = ("sid,cid,ts,kind", f"a,1,{T0},podcast", f"b,2,{T0},Podcast", f"c,3,{T0},webinar", f"d,4,{T0},")


@pytest.mark.parametrize(
    ("rule", "names"),
    [
        ({"map": {"podcast": "Show"}}, ["Show", "Podcast", "webinar", None]),
        ({"map": {"podcast": "Show"}, "case_insensitive": True}, ["Show", "Show", "webinar", None]),
        ({"map": {"podcast": "Show"}, "unmapped": "keep"}, ["Show", "Podcast", "webinar", None]),
        ({"map": {"podcast": "Show"}, "unmapped": "null"}, ["Show", None, None, None]),
        ({"map": {"PODCAST": "Show"}, "case_insensitive": True, "unmapped": "null"}, ["Show", "Show", None, None]),
    ],
)
def test_value_map(tmp_path: Path, rule: dict[str, Any], names: list[Any]) -> None:
    data = csv_file(tmp_path / "p.csv", *MAP_ROWS)
    out = run(mapping_doc({"mediaName": {"column": "kind", **rule}}), [data], tmp_path)
    assert column(out, "sessionId") == ["a", "b", "c", "d"]
    assert column(out, "mediaName") == names
    assert out.skipped == {}


def test_value_map_unmapped_skip_counts_the_rows(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", *MAP_ROWS)
    rule = {
        "column": "kind",
        "map": {"podcast": "AUDIO", "video": "VIDEO"},
        "case_insensitive": True,
        "unmapped": "skip",
    }
    out = run(mapping_doc({"mediaType": rule}), [data], tmp_path)
    # "webinar" is skipped; an empty value is not a value outside the map (it fails validation instead).
    assert column(out, "sessionId") == ["a", "b"]
    assert column(out, "mediaType") == ["AUDIO", "AUDIO"]
    assert out.skipped == {"fields.mediaType: value not in map": 1}
    assert [(r["row_number"], r["error"]) for r in out.invalid] == [(4, "mediaType: required field is missing")]
    assert out.report.invalid_events == 1


def test_map_of_media_type_as_in_the_generic_mapping(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,mt", f"a,1,{T0},Video", f"b,2,{T0},podcast", f"c,3,{T0},hologram")
    rule = {"column": "mt", "map": {"video": "VIDEO", "podcast": "AUDIO"}, "case_insensitive": True}
    out = run(mapping_doc({"mediaType": rule}), [data], tmp_path)
    assert column(out, "mediaType") == ["VIDEO", "AUDIO"]
    assert [(r["row_number"], r["field"], r["value"]) for r in out.invalid] == [
        (3, "mediaType", "hologram")
    ]  # as in the file


@pytest.mark.parametrize("text", ["12345", "12345.0", " 12345 ", "+12345", "0012345", "12345."])
def test_int_from_text(tmp_path: Path, text: str) -> None:
    data = write_rows(tmp_path / "p.csv", [{"sid": "a", "cid": text, "ts": T0}])
    out = run(mapping_doc(), [data], tmp_path)
    assert column(out, "contactId") == [12345]
    assert out.invalid == []


@pytest.mark.parametrize("name", ["p.parquet", "p.jsonl"])
@pytest.mark.parametrize("value", [12345, 12345.0, "12345", "12345.0"])
def test_int_from_typed_columns(tmp_path: Path, name: str, value: object) -> None:
    data = write_rows(tmp_path / name, [{"sid": "a", "cid": value, "ts": T0}])
    out = run(mapping_doc(), [data], tmp_path)
    assert column(out, "contactId") == [12345]


@pytest.mark.parametrize("text", ["12a", "1.5", "9223372036854775808", "1e5", "0x10", "12 345"])
def test_int_rejects_non_integers_with_a_results_record(tmp_path: Path, text: str) -> None:
    data = write_rows(tmp_path / "p.csv", [{"sid": "a", "cid": "7", "ts": T0}, {"sid": "b", "cid": text, "ts": T0}])
    out = run(mapping_doc({"contactUtk": {"const": "utk-1"}}), [data], tmp_path)
    assert column(out, "sessionId") == ["a"]
    assert [(r["row_number"], r["status"], r["field"], r["value"], r["error"]) for r in out.invalid] == [
        (2, "invalid", "contactId", text.strip(), "contactId: not an integer id")
    ]


def test_int_reject_from_a_float_column(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "p.parquet", [{"sid": "a", "cid": 1.5, "ts": T0}])
    out = run(mapping_doc({"contactUtk": {"const": "u"}}), [data], tmp_path)
    assert [(r["field"], r["value"], r["error"]) for r in out.invalid] == [
        ("contactId", "1.5", "contactId: not an integer id")
    ]


def test_strings_are_trimmed_and_empty_is_omitted(tmp_path: Path) -> None:
    data = write_rows(
        tmp_path / "p.csv",
        [
            {"sid": "  a  ", "cid": "1", "ts": T0, "title": "  Intro \t"},
            {"sid": "b", "cid": "2", "ts": T0, "title": "   "},
        ],
    )
    out = run(mapping_doc({"mediaName": "title"}), [data], tmp_path)
    assert column(out, "sessionId") == ["a", "b"]
    assert out.payloads[0]["mediaName"] == "Intro"
    assert "mediaName" not in out.payloads[1]


def test_lower_and_upper(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts,title", f"Ab,1,{T0},Intro")
    doc = mapping_doc({"sessionId": {"column": "sid", "lower": True}, "mediaName": {"column": "title", "upper": True}})
    out = run(doc, [data], tmp_path)
    assert (column(out, "sessionId"), column(out, "mediaName")) == (["ab"], ["INTRO"])


def test_numbers_as_strings_from_parquet(tmp_path: Path) -> None:
    data = write_rows(
        tmp_path / "p.parquet",
        [{"sid": 42, "cid": 1, "ts": T0, "ext": 7.0}, {"sid": 43, "cid": 2, "ts": T0, "ext": 7.5}],
    )
    out = run(mapping_doc({"externalId": "ext"}), [data], tmp_path)
    assert column(out, "sessionId") == ["42", "43"]
    assert column(out, "externalId") == ["7", "7.5"]


def test_template(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "viewer,view,cid,ts", f"alice,1,1,{T0}", f"bob,,2,{T0}", f" carol , 3 ,3,{T0}")
    out = run(mapping_doc({"sessionId": {"template": "{viewer}-{view}"}}), [data], tmp_path)
    assert column(out, "sessionId") == ["alice-1", "carol-3"]
    assert [(r["row_number"], r["error"]) for r in out.invalid] == [(2, "sessionId: required field is missing")]


def test_template_with_constant_text_around(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "viewer,view,cid,ts", f"alice,1,1,{T0}")
    out = run(mapping_doc({"sessionId": {"template": "mux:{ viewer }/{view}!"}}), [data], tmp_path)
    assert column(out, "sessionId") == ["mux:alice/1!"]


# Computed once with media-import's SipHash key; the point is that they never change.
HASH_ALICE_42 = "4552aac054f2ccac"
HASH_ALICE_43 = "41b777f6a312e644"
HASH_BOB_42 = "0a12c9ca15ed2a9d"
HASH_ALICE = "ccccd145fa8ce49b"
HASH_BOB = "e8b6787a3a9eede8"


def test_hash_ids_are_stable(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "viewer,view,cid,ts", f"alice,42,1,{T0}", f"alice,43,1,{T0}", f"bob,42,1,{T0}")
    out = run(mapping_doc({"sessionId": {"hash": ["viewer", "view"]}}), [data], tmp_path)
    assert column(out, "sessionId") == [HASH_ALICE_42, HASH_ALICE_43, HASH_BOB_42]
    single = run(mapping_doc({"sessionId": {"hash": ["viewer"]}}, dedupe=False), [data], tmp_path)
    assert column(single, "sessionId") == [HASH_ALICE, HASH_ALICE, HASH_BOB]


def test_hash_of_only_empty_parts_is_null(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "viewer,view,cid,ts", f",,1,{T0}", f",,2,{T0}", f"bob,,3,{T0}")
    out = run(mapping_doc({"sessionId": {"hash": ["viewer", "view"]}}), [data], tmp_path)
    assert out.report.duplicates == 0
    assert [(r["row_number"], r["error"]) for r in out.invalid] == [
        (1, "sessionId: required field is missing"),
        (2, "sessionId: required field is missing"),
    ]
    assert [p["contactId"] for p in out.payloads] == [3]  # a part may be empty, not all of them


def test_hash_is_the_same_from_every_format(tmp_path: Path) -> None:
    rows = [{"viewer": "alice", "view": 42, "cid": 1, "ts": T0}]
    ids = []
    for name in ("p.parquet", "p.jsonl", "p.csv"):
        out = run(
            mapping_doc({"sessionId": {"hash": ["viewer", "view"]}}), [write_rows(tmp_path / name, rows)], tmp_path
        )
        ids.append(column(out, "sessionId"))
    assert ids == [[HASH_ALICE_42]] * 3


def test_hash_tells_the_parts_apart(tmp_path: Path) -> None:
    data = csv_file(tmp_path / "p.csv", "a,b,cid,ts", f"ab,c,1,{T0}", f"a,bc,1,{T0}", f"abc,,1,{T0}")
    out = run(mapping_doc({"sessionId": {"hash": ["a", "b"]}}), [data], tmp_path)
    ids = column(out, "sessionId")
    assert len(ids) == 3
    assert len(set(ids)) == 3
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in ids)


def test_skip_filters_are_counted_not_errors(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,bot,country",
        f"a,1,{T0},false,FR",
        f"b,2,{T0},true,FR",
        f"c,3,{T0},yes,XX",
        f"d,4,{T0},no,XX",
        f",5,{T0},no,DE",
        f"f,6,{T0},0,DE",
    )
    doc = mapping_doc(
        skip=[
            {"column": "bot", "is_true": True},
            {"column": "country", "equals": "XX"},
            {"column": "sid", "missing": True},
        ]
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == ["a", "f"]
    assert out.skipped == {
        "skip[0] bot is_true": 2,
        "skip[1] country equals XX": 1,
        "skip[2] sid missing": 1,
    }
    assert out.invalid == []
    assert out.report.rows == 6


def test_skip_with_all_any_not(tmp_path: Path) -> None:
    data = csv_file(
        tmp_path / "p.csv",
        "sid,cid,ts,a,b",
        f"s1,1,{T0},1,1",
        f"s2,1,{T0},1,0",
        f"s3,1,{T0},0,0",
    )
    doc = mapping_doc(
        skip=[
            {"all": [{"column": "a", "==": 1}, {"column": "b", "==": 1}], "name": "both"},
            {"not": {"any": [{"column": "a", "==": 1}, {"column": "b", "==": 1}]}, "name": "neither"},
        ]
    )
    out = run(doc, [data], tmp_path)
    assert column(out, "sessionId") == ["s2"]
    assert out.skipped == {"skip[0] both": 1, "skip[1] neither": 1}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("p.csv"),
        "p.jsonl",
        "p.parquet",
    ],
)
def test_optional_column_may_be_absent(tmp_path: Path, name: str) -> None:
    data = write_rows(tmp_path / name, [{"sid": "a", "cid": 1, "ts": T0}])
    doc = mapping_doc(
        {
            "mediaName": {"column": "title", "optional": True},
            "iframeUrl": {"coalesce": [{"column": "embed", "optional": True}, {"const": "https://e.example.com"}]},
        }
    )
    out = run(doc, [data], tmp_path)
    assert [(p["sessionId"], p.get("mediaName"), p["iframeUrl"]) for p in out.payloads] == [
        ("a", None, "https://e.example.com")
    ]


def test_a_column_that_is_not_optional_must_be_there(tmp_path: Path) -> None:
    data = write_rows(tmp_path / "p.parquet", [{"sid": "a", "cid": 1, "ts": T0}])
    with pytest.raises(InputError) as info:
        run(mapping_doc({"mediaName": "title"}), [data], tmp_path)
    assert str(info.value) == f"{data}: missing column(s) title used by the mapping"
    assert info.value.hint is not None
    assert info.value.hint.strip() == "Available: sid, cid, ts"
