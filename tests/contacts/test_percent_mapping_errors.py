"""Percent rules that make no sense are refused before any row is read, each problem with its
YAML path, all at once (exit 2, nothing sent)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from importer.errors import MappingError
from importer.mapping.spec import parse_mapping
from importer.simulator import Simulator

from .helpers import Cli, write_csv

FIELDS = {"sessionId": "s", "mediaType": {"const": "VIDEO"}, "contactId": "c", "externalId": "v"}
RATIO = {"ratio": ["played", "duration"]}


def problems(*events: dict[str, Any]) -> list[str]:
    with pytest.raises(MappingError) as caught:
        parse_mapping({"fields": FIELDS, "events": list(events)})
    return caught.value.problems


def percent_rule(**keys: Any) -> dict[str, Any]:
    return {"type": "percent", "timestamp": "t", **keys}


@pytest.mark.parametrize(
    ("rule", "path", "words"),
    [
        (percent_rule(state="STARTED", percent=RATIO), "events[0].state", "have no state"),
        (percent_rule(), "events[0].percent", "required: ratio: [played, duration] or value: <share>"),
        (percent_rule(percent={"value": "p", **RATIO}), "events[0].percent", "exactly one of ratio"),
        (percent_rule(percent={"scale": "percent"}), "events[0].percent", "exactly one of ratio"),
        (percent_rule(percent={"ratio": ["played"]}), "events[0].percent.ratio", "[numerator, denominator]"),
        (percent_rule(percent={"value": "p", "scale": "fractions"}), "events[0].percent.scale", "'fraction'"),
        (percent_rule(percent={"values": "p"}), "events[0].percent.values", "did you mean 'value'"),
        (percent_rule(percent="p"), "events[0].percent", "expected a mapping"),
        ({"state": "STARTED", "timestamp": "t", "percent": RATIO}, "events[0].percent", "type: percent"),
        ({"type": "percentage", "timestamp": "t", "percent": RATIO}, "events[0].type", "did you mean 'percent'"),
        (percent_rule(percent={"value": {"colum": "p"}}), "events[0].percent.value.colum", "did you mean 'column'"),
    ],
)
def test_a_bad_percent_rule_is_refused_with_its_path(rule: dict[str, Any], path: str, words: str) -> None:
    found = [p for p in problems(rule) if p.startswith(f"{path}:")]
    assert found, problems(rule)
    assert any(words in p for p in found), found


def test_every_problem_of_every_rule_is_reported_at_once() -> None:
    found = problems(
        {"state": "STARTED", "timestamp": "t"},
        percent_rule(state="VIEWED", percent={"value": "p", **RATIO}),
        percent_rule(),
    )
    assert [p.split(":")[0] for p in found] == ["events[1].state", "events[1].percent", "events[2].percent"]


def test_a_valid_percent_rule_parses() -> None:
    mapping = parse_mapping({"fields": FIELDS, "events": [percent_rule(percent={"value": "p", "scale": "percent"})]})
    (rule,) = mapping.events
    assert rule.kind == "percent" and rule.state is None
    assert rule.percent is not None and rule.percent.scale == "percent" and rule.percent.ratio is None
    assert mapping.identity == ("sessionId", "state", "_type", "playedPercent")


def test_a_missing_timestamp_does_not_hide_the_percent_problems() -> None:
    found = problems({"type": "percent", "percent": {"value": "p", **RATIO}})
    assert any(p.startswith("events[0].timestamp:") for p in found)
    assert any(p.startswith("events[0].percent:") and "exactly one of ratio" in p for p in found)


def test_a_missing_percent_says_what_it_needs() -> None:
    (found,) = problems(percent_rule())
    assert found.startswith("events[0].percent:")
    assert "required" in found and "ratio" in found and "value" in found


def test_the_cli_refuses_a_bad_percent_mapping_before_sending(cli: Cli, simulator: Simulator, tmp_path: Path) -> None:
    data = write_csv(
        tmp_path / "views.csv", ["s", "c", "v", "t", "p"], [["s1", "1", "v1", "2025-03-01T10:00:00Z", "1"]]
    )
    cli.use_mapping(
        "fields: {sessionId: s, mediaType: {const: VIDEO}, contactId: c, externalId: v}\n"
        "events:\n"
        "  - {type: percent, state: STARTED, timestamp: t, percent: {value: p, ratio: [p, p]}}\n"
    )
    cli.token(simulator.token)
    ran = cli.run(simulator.url, data)
    assert ran.code == 2
    assert "2 problems in the mapping" in ran.err
    assert "events[0].state: media-played-percent events have no state" in ran.err
    assert "events[0].percent: needs exactly one of ratio" in ran.err
    assert simulator.client.stats()["requests_total"] == 0
    code, _, err = cli("check", data, "-m", cli.mapping, "-q")
    assert code == 2 and "events[0].state" in err
