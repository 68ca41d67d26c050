"""The mapping language's error reporting: every problem at once, each with its YAML path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support import Cli

from importer.errors import MappingError
from importer.mapping.spec import load_mapping, parse_mapping

from .helpers import T0, csv_file, mapping_doc, write_mapping, write_text


def problems(doc: Any, **kw: Any) -> list[str]:
    with pytest.raises(MappingError) as info:
        parse_mapping(doc, **kw)
    return info.value.problems


def test_a_valid_mapping_parses() -> None:
    mapping = parse_mapping(mapping_doc(), source="m.yaml")
    assert mapping.name == "m"
    assert mapping.timezone == "UTC"
    assert mapping.dedupe == ("sessionId", "state")
    assert sorted(mapping.fields) == ["contactId", "externalId", "mediaType", "sessionId"]
    assert mapping.top_columns() == ["cid", "sid", "ts"]


def test_unknown_top_level_key_with_did_you_mean() -> None:
    assert problems(mapping_doc(timezon="UTC")) == ["timezon: unknown key 'timezon' (did you mean 'timezone'?)"]


def test_unknown_payload_field_with_did_you_mean() -> None:
    doc = mapping_doc({"contactId": None, "contactID": "cid"})
    assert problems(doc) == ["fields.contactID: unknown payload field 'contactID' (did you mean 'contactId'?)"]


def test_event_fields_are_not_payload_fields() -> None:
    assert problems(mapping_doc({"state": "s"})) == [
        "fields.state: 'state' comes from the events rules, not from fields"
    ]


def test_unknown_transform_key_with_did_you_mean() -> None:
    doc = mapping_doc({"mediaName": {"column": "n", "lowercase": True}})
    assert problems(doc) == ["fields.mediaName.lowercase: unknown key 'lowercase' (did you mean 'lower'?)"]


def test_unknown_source_key_with_did_you_mean() -> None:
    doc = mapping_doc({"mediaName": {"colum": "n"}})
    assert problems(doc) == [
        "fields.mediaName.colum: unknown key 'colum' (did you mean 'column'?)",
        "fields.mediaName: needs exactly one of column, const, coalesce, template, hash, lookup, param, add "
        "(found none)",
    ]


def test_two_sources_in_one_rule() -> None:
    doc = mapping_doc({"mediaName": {"column": "n", "const": "x"}})
    assert problems(doc) == [
        "fields.mediaName: needs exactly one of column, const, coalesce, template, hash, lookup, param, add "
        "(found column, const)"
    ]


def test_bad_type_name() -> None:
    doc = mapping_doc({"mediaName": {"column": "n", "type": "strng"}})
    assert problems(doc) == ["fields.mediaName.type: unknown type 'strng' (did you mean 'string'?)"]


def test_bad_timezone_at_the_top_is_reported_once() -> None:
    assert problems(mapping_doc(timezone="Europe/Pariss")) == [
        "timezone: unknown time zone 'Europe/Pariss' (use an IANA name such as 'UTC' or 'Europe/Paris')"
    ]


def test_bad_timezone_on_a_timestamp() -> None:
    doc = mapping_doc(events=[{"state": "STARTED", "timestamp": {"column": "ts", "timezone": "Mars/Base"}}])
    assert problems(doc) == [
        "events[0].timestamp.timezone: unknown time zone 'Mars/Base' (use an IANA name such as 'UTC' or 'Europe/Paris')"
    ]


def test_bad_state() -> None:
    doc = mapping_doc(events=[{"state": "STRATED", "timestamp": "ts"}])
    assert problems(doc) == ["events[0].state: unknown state 'STRATED' (did you mean 'STARTED'?)"]


def test_states_are_case_insensitive() -> None:
    mapping = parse_mapping(mapping_doc(events=[{"state": "viewed", "timestamp": "ts"}]))
    assert mapping.events[0].state == "VIEWED"


def test_state_from_a_column_needs_a_map_to_states() -> None:
    doc = mapping_doc(
        events=[
            {"state": {"column": "e"}, "timestamp": "ts"},
            {"state": {"column": "e", "map": {"start": "STARTED", "pause": "PAUSED"}}, "timestamp": "ts"},
        ]
    )
    assert problems(doc) == [
        "events[0].state: a state taken from a column needs a 'map' to STARTED / VIEWED",
        "events[1].state.map.pause: 'PAUSED' is not a state (expected one of: STARTED, VIEWED)",
    ]


@pytest.mark.parametrize("events", [None, [], "STARTED"])
def test_events_missing(events: Any) -> None:
    doc = mapping_doc()
    if events is None:
        del doc["events"]
    else:
        doc["events"] = events
    assert problems(doc) == ["events: expected a list of event rules (each with state and timestamp)"]


def test_event_without_timestamp() -> None:
    assert problems(mapping_doc(events=[{"state": "STARTED"}])) == [
        "events[0].timestamp: required: where the event's time comes from",
        "events[0].timestamp: expected a column name or a value rule, got nothing",
    ]


def test_required_payload_fields() -> None:
    doc = mapping_doc({"sessionId": None, "mediaType": None})
    assert problems(doc) == [
        "fields: 'sessionId' is required by HubSpot and has no rule",
        "fields: 'mediaType' is required by HubSpot and has no rule",
    ]


def test_condition_problems() -> None:
    doc = mapping_doc(
        events=[
            {"state": "STARTED", "timestamp": "ts", "when": {"column": "x", "greater": 3}},
            {"state": "VIEWED", "timestamp": "ts", "when": {"column": "x", "gte": "half"}},
            {"state": "VIEWED", "timestamp": "ts", "when": {"ratio": ["a"], "gte": 0.5}},
            {"state": "VIEWED", "timestamp": "ts", "when": {"column": "x", "matches": "("}},
            {"state": "VIEWED", "timestamp": "ts", "when": {"column": "x", "present": True, "scale": "ratio"}},
        ]
    )
    got = problems(doc)
    assert got[:5] == [
        "events[0].when.greater: unknown key 'greater' (did you mean 'gte'?)",
        "events[0].when: a condition needs exactly one test: present, missing, equals, not_equals, in, not_in, "
        "is_true, is_false, gt, gte, lt, lte, matches (or >, >=, <, <=, ==, !=)",
        "events[1].when.gte: expected a number, got 'half'",
        "events[2].when.ratio: expected [numerator, denominator]",
        "events[3].when.matches: not a valid regular expression (missing ), unterminated subpattern at position 0)",
    ]
    assert got[5:] == ["events[4].when.scale: unknown scale 'ratio' (did you mean 'fraction'?)"]


def test_input_section_problems() -> None:
    doc = mapping_doc(input={"format": "xls", "delimiter": ";;", "encoding": "latin-2x", "batch_rows": 0}, version=2)
    assert problems(doc) == [
        "version: unsupported version 2; this media-import reads version 1",
        "input.format: unknown format 'xls' (expected one of: csv, tsv, parquet, jsonl)",
        "input.delimiter: must be a single character, got ';;'",
        "input.encoding: unknown encoding 'latin-2x' (e.g. utf-8, utf-8-sig, latin-1)",
        "input.batch_rows: must be a positive integer, got 0",
    ]


def test_timestamp_modifier_problems() -> None:
    doc = mapping_doc(
        {"mediaName": {"column": "n", "type": "int", "unit": "ms"}},
        events=[{"state": "STARTED", "timestamp": {"column": "ts", "unit": "sec", "format": "dd/mm/yyyy"}}],
    )
    assert problems(doc) == [
        "fields.mediaName: unit only apply to timestamps, but type is 'int'",
        "events[0].timestamp.unit: unknown unit 'sec' (expected one of: s, ms, us, ns, auto)",
        "events[0].timestamp.format: expected auto, iso8601, epoch or a strptime pattern like '%d/%m/%Y %H:%M'",
    ]


def test_dedupe_problems() -> None:
    assert problems(mapping_doc(dedupe=["sessionID"])) == [
        "dedupe: unknown field 'sessionID' (did you mean 'sessionId'?)"
    ]
    assert problems(mapping_doc(dedupe="yes")) == [
        "dedupe: expected true, false, or a list of payload fields such as [sessionId, state]"
    ]


def test_lookup_problems() -> None:
    doc = mapping_doc(
        {"contactId": {"lookup": "contact", "match": "email", "get": "id"}},
        lookups={"contacts": {"path": "c.csv", "normalize": ["upper"], "sep": ","}},
    )
    assert problems(doc) == [
        "lookups.contacts.sep: unknown key 'sep' "
        "(expected one of: source, path, key, normalize, format, delimiter, encoding)",
        "lookups.contacts: 'key' (the lookup file's key column) is required",
        "lookups.contacts.normalize: must be a list of 'trim' and/or 'lower'",
        "fields.contactId.lookup: no lookup table named 'contact' (did you mean 'contacts'?)",
    ]


def test_lookup_rule_needs_match_and_get() -> None:
    doc = mapping_doc({"contactId": {"lookup": "contacts"}}, lookups={"contacts": {"path": "c.csv", "key": "email"}})
    assert problems(doc) == [
        "fields.contactId.match: lookup needs 'match': the input column whose value is looked up",
        "fields.contactId.get: lookup needs 'get': the lookup file's column to take",
    ]


def test_several_problems_are_reported_at_once_with_their_paths() -> None:
    doc = {
        "verison": 1,
        "fields": {
            "sessionId": "sid",
            "mediaType": {"column": "mt", "map": {"video": "VIDEO"}, "unmapped": "drop"},
            "contactID": "cid",
            "externalId": {"colum": "x"},
            "mediaName": {"column": "n", "type": "strng"},
        },
        "events": [
            {"state": "STRATED", "timestamp": "ts"},
            {"state": "VIEWED", "timestamp": {"column": "vt", "timezone": "Nowhere/City"}, "wehn": {}},
        ],
        "skip": [{"column": "bot", "is_true": "yes"}],
    }
    with pytest.raises(MappingError) as info:
        parse_mapping(doc, source="bad.yaml")
    expected = [
        "verison: unknown key 'verison' (did you mean 'version'?)",
        "fields.mediaType.unmapped: expected keep, null or skip (expected one of: keep, null, skip)",
        "fields.contactID: unknown payload field 'contactID' (did you mean 'contactId'?)",
        "fields.externalId.colum: unknown key 'colum' (did you mean 'column'?)",
        "fields.externalId: needs exactly one of column, const, coalesce, template, hash, lookup, param, add "
        "(found none)",
        "fields.mediaName.type: unknown type 'strng' (did you mean 'string'?)",
        "events[0].state: unknown state 'STRATED' (did you mean 'STARTED'?)",
        "events[1].wehn: unknown key 'wehn' (did you mean 'when'?)",
        "events[1].timestamp.timezone: unknown time zone 'Nowhere/City' "
        "(use an IANA name such as 'UTC' or 'Europe/Paris')",
        "skip[0].is_true: expected true or false, got 'yes'",
    ]
    assert info.value.problems == expected
    message = str(info.value)
    assert message.splitlines() == ["bad.yaml: 10 problems in the mapping:", *[f"  - {p}" for p in expected]]


def test_not_a_mapping_at_all() -> None:
    assert problems("hello") == ["expected a mapping (key: value), got the text 'hello'"]
    assert problems({"fields": [], "events": []}) == [
        "fields: expected a mapping (key: value), got a list",
        "events: expected a list of event rules (each with state and timestamp)",
    ]


def test_invalid_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    path = write_text(tmp_path / "m.yaml", "fields:\n  sessionId: sid\n   bad: [\n")
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    assert info.value.problems == ["line 3, column 7: not valid YAML (mapping values are not allowed here)"]
    assert str(info.value).startswith(f"{path}: 1 problem in the mapping:\n")


def test_invalid_yaml_through_the_cli(tmp_path: Path, cli: Cli) -> None:
    mapping = write_text(tmp_path / "m.yaml", "events:\n  - state: STARTED\n    timestamp: [ts\n")
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts", f"a,1,{T0}")
    code, out, err = cli("check", data, "-m", mapping)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == f"media-import: error: {mapping}: 1 problem in the mapping:"
    assert lines[1].startswith("  - line 4, column 1: not valid YAML (")


def test_missing_mapping_file(tmp_path: Path, cli: Cli) -> None:
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts", f"a,1,{T0}")
    missing = tmp_path / "nope.yaml"
    code, _, err = cli("check", data, "-m", missing)
    assert code == 2
    assert err.splitlines() == [
        f"media-import: error: {missing}: 1 problem in the mapping:",
        "  - cannot read the file (No such file or directory)",
    ]


def test_mapping_problems_through_the_cli_list_all(tmp_path: Path, cli: Cli) -> None:
    doc = mapping_doc({"contactID": "cid"}, timezon="UTC")
    mapping = write_mapping(tmp_path / "m.yaml", doc)
    data = csv_file(tmp_path / "p.csv", "sid,cid,ts", f"a,1,{T0}")
    code, _, err = cli("check", data, "-m", mapping)
    assert code == 2
    assert err.splitlines() == [
        f"media-import: error: {mapping}: 2 problems in the mapping:",
        "  - timezon: unknown key 'timezon' (did you mean 'timezone'?)",
        "  - fields.contactID: unknown payload field 'contactID' (did you mean 'contactId'?)",
    ]


def test_lookup_option_naming_an_unknown_lookup(tmp_path: Path, cli: Cli) -> None:
    doc = mapping_doc(
        {"contactId": {"lookup": "contacts", "match": "email", "get": "contact_id"}},
        lookups={"contacts": {"path": "contacts.csv", "key": "email"}},
    )
    mapping = write_mapping(tmp_path / "m.yaml", doc)
    data = csv_file(tmp_path / "p.csv", "sid,email,ts", f"a,x@example.com,{T0}")
    code, out, err = cli("check", data, "-m", mapping, "--lookup", "contact=other.csv")
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"media-import: error: {mapping}: 1 problem in the mapping:",
        "  - --lookup: the mapping has no lookup named 'contact' (did you mean 'contacts'?)",
    ]


def test_lookup_option_on_a_mapping_without_lookups_says_so() -> None:
    assert problems(mapping_doc(), lookup_paths={"contacts": "c.csv"}) == [
        "--lookup: the mapping has no lookup named 'contacts' (none are defined)"
    ]


def test_lookup_option_must_be_name_equals_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from importer.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(["check", "p.csv", "-m", "m.yaml", "--lookup", "contacts"])
    assert info.value.code == 2
    assert "argument --lookup: expected NAME=PATH, got 'contacts'" in capsys.readouterr().err
