"""The mapping language: YAML → a validated, typed ``Mapping``.

The whole document is checked before any data is read, and every problem is
reported at once with its YAML path and, for misspelt names, a did-you-mean.
The meaning of each construct is in README.md ("Mapping reference"); the
vectorised evaluation is in ``importer.mapping.plan``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import MappingError
from importer.mapping.coerce import TIME_UNITS, TimestampFormat
from importer.mapping.document import parse_document, read_document
from importer.mapping.presets import find_preset, presets
from importer.source.readers import FORMATS, InputOptions

# Payload fields of media-played events and the type each is sent as.
PAYLOAD_FIELDS: dict[str, str] = {
    "mediaType": "enum",
    "sessionId": "string",
    "contactId": "int",
    "contactUtk": "string",
    "_hsenc": "string",
    "mediaBridgeId": "int",
    "externalId": "string",
    "mediaUrl": "string",
    "mediaName": "string",
    "pageId": "int",
    "pageUrl": "string",
    "pageName": "string",
    "iframeUrl": "string",
    "externalPlayContext": "enum",
}
EVENT_FIELDS = ("state", "occurredTimestamp")
MEDIA_TYPES = ("VIDEO", "AUDIO", "DOCUMENT", "OTHER", "IMAGE")
STATES = ("STARTED", "VIEWED")
PLAY_CONTEXTS = ("EMAIL", "EXTERNAL_PAGE")
VALUE_TYPES = ("string", "int", "float", "bool", "timestamp")
SOURCE_KEYS = ("column", "const", "coalesce", "template", "hash", "lookup", "param", "add")
# Units of the durations `add` puts on a timestamp, in milliseconds.
DURATION_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}
MODIFIER_KEYS = (
    "type",
    "map",
    "case_insensitive",
    "unmapped",
    "default",
    "optional",
    "lower",
    "upper",
    "format",
    "unit",
    "timezone",
)
LOOKUP_KEYS = ("match", "get")
PARAM_KEYS = ("key",)
TESTS = (
    "present",
    "missing",
    "equals",
    "not_equals",
    "in",
    "not_in",
    "is_true",
    "is_false",
    "gt",
    "gte",
    "lt",
    "lte",
    "matches",
)
TEST_ALIASES = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "==": "equals", "!=": "not_equals"}
SCALES = ("fraction", "percent")
TOP_KEYS = (
    "version",
    "name",
    "description",
    "input",
    "timezone",
    "lookups",
    "skip",
    "fields",
    "events",
    "dedupe",
    "media",
)
INPUT_KEYS = ("format", "delimiter", "encoding", "quote_char", "escape_char", "batch_rows")
LOOKUP_TABLE_KEYS = ("source", "path", "key", "normalize", "format", "delimiter", "encoding")
LOOKUP_SOURCES = ("file", "hubspot")
EVENT_KEYS = ("type", "state", "timestamp", "when", "name", "percent")
EVENT_TYPES = ("played", "percent")
_TEMPLATE_REF = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Expr:
    """A value taken from each row: a source and optional modifiers."""

    kind: str
    column: str | None = None
    const: Any = None
    items: tuple[Expr, ...] = ()
    template: str | None = None
    lookup: str | None = None
    lookup_get: str | None = None
    param_key: str | None = None
    type: str | None = None
    value_map: tuple[tuple[str, Any], ...] | None = None
    case_insensitive: bool = False
    unmapped: str = "keep"
    default: Any = None
    optional: bool = False
    lower: bool = False
    upper: bool = False
    timestamp: TimestampFormat | None = None
    when: Condition | None = None  # the value only where this holds, else null
    duration_ms: int | None = None  # a duration of `add`: milliseconds per unit of its values

    def columns(self) -> list[str]:
        """Input column paths this value reads (dotted for nested JSON)."""
        out: list[str] = []
        if self.column is not None:
            out.append(self.column)
        for item in self.items:
            out.extend(item.columns())
        if self.template is not None:
            out.extend(m.strip() for m in _TEMPLATE_REF.findall(self.template))
        if self.when is not None:
            for e in self.when.exprs():
                out.extend(e.columns())
        return out


@dataclass(frozen=True)
class Condition:
    """A test on each row; ``op`` is all / any / not / test."""

    op: str
    children: tuple[Condition, ...] = ()
    operand: Expr | None = None
    ratio: tuple[Expr, Expr] | None = None
    test: str | None = None
    arg: Any = None
    scale: str | None = None
    label: str = ""

    def exprs(self) -> list[Expr]:
        out = [c for child in self.children for c in child.exprs()]
        if self.operand is not None:
            out.append(self.operand)
        if self.ratio is not None:
            out.extend(self.ratio)
        return out


@dataclass(frozen=True)
class Share:
    """How far a row played, as a fraction: a ratio of two values, or one value (fraction or percent)."""

    ratio: tuple[Expr, Expr] | None = None
    value: Expr | None = None
    scale: str = "fraction"  # fraction: values <= 1 are fractions, above are percents; percent: always percents


@dataclass(frozen=True)
class EventRule:
    """One event a row may produce: its state, timestamp and an optional condition.

    A ``percent`` rule gives media-played-percent events instead: one per quartile
    (0, 25, 50, 75, 100) the row's share reached, and no state.
    """

    name: str
    state: str | Expr | None
    timestamp: Expr
    when: Condition | None = None
    kind: str = "played"
    percent: Share | None = None


@dataclass(frozen=True)
class MediaSpec:
    """How one media object is described from the rows that name it (by the event's externalId).

    ``properties`` holds a value rule per media property (``MEDIA_PROPERTIES``); ``duration`` is read
    in ``duration_unit`` and sent in milliseconds. ``api`` picks how objects are created: ``crm``
    (the CRM objects API on the app's object type per media type) or ``objects`` (the dated Media
    Bridge objects API).
    """

    properties: dict[str, Expr]
    duration_unit: str = "ms"
    api: str = "crm"
    object_types: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LookupTable:
    name: str
    path: str | None
    key: str
    normalize: tuple[str, ...] = ("trim", "lower")
    options: InputOptions = field(default_factory=InputOptions)
    source: str = "file"  # or "hubspot": emails resolved through the CRM, cached in the state directory


@dataclass(frozen=True)
class Mapping:
    """A validated mapping, ready to compile."""

    source: str
    name: str
    input: InputOptions
    timezone: str
    lookups: dict[str, LookupTable]
    skip: tuple[Condition, ...]
    fields: dict[str, Expr]
    events: tuple[EventRule, ...]
    dedupe: tuple[str, ...] | None
    media: MediaSpec | None = None

    @property
    def has_percent(self) -> bool:
        return any(rule.kind == "percent" for rule in self.events)

    @property
    def identity(self) -> tuple[str, ...] | None:
        """The columns that make an event the same event (dedupe keys; None: the whole payload)."""
        if self.dedupe is None:
            return None
        return (*self.dedupe, "_type", "playedPercent") if self.has_percent else self.dedupe

    def exprs(self) -> list[Expr]:
        out = list(self.fields.values())
        for rule in self.events:
            out.append(rule.timestamp)
            if rule.percent is not None:
                out.extend(rule.percent.ratio or ())
                if rule.percent.value is not None:
                    out.append(rule.percent.value)
            if isinstance(rule.state, Expr):
                out.append(rule.state)
            if rule.when is not None:
                out.extend(rule.when.exprs())
        for cond in self.skip:
            out.extend(cond.exprs())
        if self.media is not None:
            out.extend(self.media.properties.values())
        return out

    def column_paths(self) -> dict[str, bool]:
        """Every input column path read, with whether it is optional."""
        seen: dict[str, bool] = {}

        def walk(e: Expr) -> None:
            for item in e.items:
                walk(item)
            if e.when is not None:
                for inner in e.when.exprs():
                    walk(inner)
            own = [e.column] if e.column else []
            if e.template:
                own += [m.strip() for m in _TEMPLATE_REF.findall(e.template)]
            for c in own:
                seen[c] = seen.get(c, True) and e.optional

        for e in self.exprs():
            walk(e)
        return seen

    def top_columns(self) -> list[str]:
        """Top-level input columns to read (the first part of dotted paths)."""
        return sorted({p.split(".")[0] for p in self.column_paths()})


def walk(exprs: Iterable[Expr]) -> list[Expr]:
    """``exprs`` and every value inside them (items, ``when`` conditions)."""
    out: list[Expr] = []
    stack = list(exprs)
    while stack:
        e = stack.pop()
        out.append(e)
        stack.extend(e.items)
        if e.when is not None:
            stack.extend(e.when.exprs())
    return out


def top_columns(exprs: Iterable[Expr]) -> set[str]:
    """The top-level input columns ``exprs`` read (the first part of dotted paths)."""
    return {c.split(".")[0] for e in exprs for c in e.columns()}


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    if not choices:
        return " (none are defined)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else f" (expected one of: {', '.join(choices)})"


class _Checker:
    """Collects every problem of a document instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def keys(self, path: str, node: AbcMapping[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in node:
            if str(key) not in allowed:
                self.add(f"{path}.{key}" if path else str(key), f"unknown key '{key}'{_suggest(str(key), allowed)}")

    def mapping_node(self, path: str, node: Any) -> dict[str, Any] | None:
        if not isinstance(node, dict):
            self.add(path, f"expected a mapping (key: value), got {_kind(node)}")
            return None
        return {str(k): v for k, v in node.items()}


def _kind(node: Any) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    return f"the text '{node}'" if isinstance(node, str) else f"'{node}'"


def load_mapping(path: str | Path, lookup_paths: dict[str, str] | None = None) -> Mapping:
    """Read and validate a mapping file, or a shipped preset by name; raise ``MappingError`` listing every problem."""
    source = str(path)
    preset = None if Path(path).exists() else find_preset(source)
    if preset is not None:
        doc = parse_document(preset.read_text().encode("utf-8"), source)
    else:
        doc = read_document(path, hint=_preset_hint(source))
    base = None if preset else Path(path).resolve().parent
    return parse_mapping(doc, source=source, base_dir=base, lookup_paths=lookup_paths)


def _preset_hint(value: str) -> str | None:
    """For a --mapping value that names neither a file nor a preset: the presets there are."""
    if "/" in value or "\\" in value:
        return None
    names = [p.name for p in presets()]
    close = difflib.get_close_matches(value.removesuffix(".yaml"), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean the preset '{close[0]}'? (media-import mappings lists them)"
    return "give a mapping file, or a preset's name: " + ", ".join(names)


def parse_mapping(
    doc: Any,
    *,
    source: str = "<mapping>",
    base_dir: Path | None = None,
    lookup_paths: dict[str, str] | None = None,
) -> Mapping:
    """Validate a parsed YAML document; raise ``MappingError`` listing every problem."""
    ck = _Checker()
    root = ck.mapping_node("", doc)
    if root is None:
        raise MappingError(source, ck.problems)
    ck.keys("", root, TOP_KEYS)
    if root.get("version", 1) != 1:
        ck.add("version", f"unsupported version {root.get('version')!r}; this media-import reads version 1")
    timezone = str(root.get("timezone", "UTC"))
    _check_zone(ck, "timezone", timezone)
    input_opts = _parse_input(ck, root.get("input", {}))
    lookups = _parse_lookups(ck, root.get("lookups", {}), base_dir, lookup_paths or {})
    parser = _ExprParser(ck, timezone, set(lookups), {n for n, t in lookups.items() if t.source == "hubspot"})
    fields: dict[str, Expr] = {}
    raw_fields = ck.mapping_node("fields", root.get("fields"))
    for name, node in (raw_fields or {}).items():
        if name in EVENT_FIELDS:
            ck.add(f"fields.{name}", f"'{name}' comes from the events rules, not from fields")
        elif name not in PAYLOAD_FIELDS:
            ck.add(f"fields.{name}", f"unknown payload field '{name}'{_suggest(name, list(PAYLOAD_FIELDS))}")
        else:
            expr = parser.expr(f"fields.{name}", node)
            if expr is not None:
                fields[name] = expr
    if raw_fields is not None:
        for required in ("sessionId", "mediaType"):
            if required not in raw_fields:
                ck.add("fields", f"'{required}' is required by HubSpot and has no rule")
    events = _parse_events(ck, parser, root.get("events"))
    skip = _parse_skip(ck, parser, root.get("skip", []))
    dedupe = _parse_dedupe(ck, root.get("dedupe", True))
    media = _parse_media(ck, parser, root["media"], "externalId" in (raw_fields or {})) if "media" in root else None
    if lookup_paths:
        for name in lookup_paths:
            if name not in lookups:
                ck.add("--lookup", f"the mapping has no lookup named '{name}'{_suggest(name, list(lookups))}")
    if ck.problems:
        raise MappingError(source, ck.problems)
    return Mapping(
        source=source,
        name=str(root.get("name", Path(source).stem)),
        input=input_opts,
        timezone=timezone,
        lookups=lookups,
        skip=tuple(skip),
        fields=fields,
        events=tuple(events),
        dedupe=dedupe,
        media=media,
    )


def _check_zone(ck: _Checker, path: str, zone: str) -> None:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        ck.add(path, f"unknown time zone '{zone}' (use an IANA name such as 'UTC' or 'Europe/Paris')")


def _parse_input(ck: _Checker, node: Any) -> InputOptions:
    raw = ck.mapping_node("input", node) if node != {} else {}
    if raw is None:
        return InputOptions()
    ck.keys("input", raw, INPUT_KEYS)
    fmt = raw.get("format")
    if fmt is not None and fmt not in FORMATS:
        ck.add("input.format", f"unknown format '{fmt}'{_suggest(str(fmt), FORMATS)}")
    for key in ("delimiter", "quote_char", "escape_char"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or len(value) != 1):
            ck.add(f"input.{key}", f"must be a single character, got {value!r}")
    encoding = str(raw.get("encoding", "utf-8"))
    try:
        "".encode(encoding)
    except LookupError:
        ck.add("input.encoding", f"unknown encoding '{encoding}' (e.g. utf-8, utf-8-sig, latin-1)")
    batch_rows = raw.get("batch_rows", InputOptions.batch_rows)
    if not isinstance(batch_rows, int) or batch_rows < 1:
        ck.add("input.batch_rows", f"must be a positive integer, got {batch_rows!r}")
        batch_rows = InputOptions.batch_rows
    return InputOptions(
        format=fmt if fmt in FORMATS else None,
        delimiter=raw.get("delimiter"),
        encoding=encoding,
        quote_char=raw.get("quote_char", '"'),
        escape_char=raw.get("escape_char"),
        batch_rows=batch_rows,
    )


def _parse_lookups(ck: _Checker, node: Any, base_dir: Path | None, overrides: dict[str, str]) -> dict[str, LookupTable]:
    raw = ck.mapping_node("lookups", node) if node != {} else {}
    out: dict[str, LookupTable] = {}
    for name, spec in (raw or {}).items():
        path = f"lookups.{name}"
        table = ck.mapping_node(path, spec)
        if table is None:
            continue
        ck.keys(path, table, LOOKUP_TABLE_KEYS)
        source = str(table.get("source", "file"))
        if source not in LOOKUP_SOURCES:
            ck.add(f"{path}.source", f"unknown lookup source '{source}'{_suggest(source, LOOKUP_SOURCES)}")
        if source == "hubspot":
            table.setdefault("key", "email")
            if table["key"] != "email" or "path" in table:
                ck.add(path, "a hubspot lookup is keyed by email and has no path")
        if "key" not in table:
            ck.add(path, "'key' (the lookup file's key column) is required")
        normalize = table.get("normalize", ["trim", "lower"])
        if not isinstance(normalize, list) or any(n not in ("trim", "lower") for n in normalize):
            ck.add(f"{path}.normalize", "must be a list of 'trim' and/or 'lower'")
            normalize = ["trim", "lower"]
        file_path = overrides.get(name, table.get("path"))
        if file_path is not None and base_dir is not None and name not in overrides:
            file_path = str((base_dir / str(file_path)).resolve())
        out[name] = LookupTable(
            name=name,
            path=str(file_path) if file_path is not None else None,
            key=str(table.get("key", "")),
            normalize=tuple(normalize),
            source=source,
            options=InputOptions(
                format=table.get("format"),
                delimiter=table.get("delimiter"),
                encoding=str(table.get("encoding", "utf-8")),
            ),
        )
    return out


def _parse_events(ck: _Checker, parser: _ExprParser, node: Any) -> list[EventRule]:
    if not isinstance(node, list) or not node:
        ck.add("events", "expected a list of event rules (each with state and timestamp)")
        return []
    rules: list[EventRule] = []
    for i, item in enumerate(node):
        path = f"events[{i}]"
        raw = ck.mapping_node(path, item)
        if raw is None:
            continue
        ck.keys(path, raw, EVENT_KEYS)
        kind = str(raw.get("type", "played"))
        if kind not in EVENT_TYPES:
            ck.add(f"{path}.type", f"unknown event type '{kind}'{_suggest(kind, EVENT_TYPES)}")
        if kind == "percent":
            rule = _parse_percent_rule(ck, parser, path, raw, i)
            if rule is not None:
                rules.append(rule)
            continue
        if "percent" in raw:
            ck.add(f"{path}.percent", "only a rule with type: percent has a percent")
        state_node = raw.get("state")
        state: str | Expr | None
        if isinstance(state_node, str):
            state = state_node.upper()
            if state not in STATES:
                ck.add(f"{path}.state", f"unknown state '{state_node}'{_suggest(state, STATES)}")
        elif isinstance(state_node, dict):
            # A row whose value is not in the state map gives no event (skipped and counted).
            state_node = {"unmapped": "skip", **state_node}
            state = parser.expr(f"{path}.state", state_node)
            if state is not None and state.value_map is None:
                ck.add(f"{path}.state", "a state taken from a column needs a 'map' to STARTED / VIEWED")
            elif state is not None and state.value_map is not None:
                for k, v in state.value_map:
                    if str(v).upper() not in STATES:
                        ck.add(f"{path}.state.map.{k}", f"'{v}' is not a state{_suggest(str(v), STATES)}")
        else:
            ck.add(f"{path}.state", "required: STARTED, VIEWED, or a column with a map")
            state = None
        if "timestamp" not in raw:
            ck.add(f"{path}.timestamp", "required: where the event's time comes from")
        ts = parser.expr(f"{path}.timestamp", raw.get("timestamp"), force_type="timestamp")
        when = parser.condition(f"{path}.when", raw["when"]) if "when" in raw else None
        if state is not None and ts is not None:
            label = str(raw.get("name", state if isinstance(state, str) else f"rule {i + 1}"))
            rules.append(EventRule(name=label, state=state, timestamp=ts, when=when))
    return rules


def _parse_percent_rule(
    ck: _Checker, parser: _ExprParser, path: str, raw: dict[str, Any], index: int
) -> EventRule | None:
    if "state" in raw:
        ck.add(f"{path}.state", "media-played-percent events have no state")
    node: dict[str, Any] | None = None
    if "percent" not in raw:
        ck.add(f"{path}.percent", "required: ratio: [played, duration] or value: <share>")
    else:
        node = ck.mapping_node(f"{path}.percent", raw["percent"])
    if "timestamp" not in raw:
        ck.add(f"{path}.timestamp", "required: where the event's time comes from")
    ts = parser.expr(f"{path}.timestamp", raw.get("timestamp"), force_type="timestamp")
    when = parser.condition(f"{path}.when", raw["when"]) if "when" in raw else None
    if node is None:
        return None
    ck.keys(f"{path}.percent", node, ("ratio", "value", "scale"))
    scale = str(node.get("scale", "fraction"))
    if scale not in ("fraction", "percent"):
        ck.add(f"{path}.percent.scale", f"expected fraction or percent{_suggest(scale, ('fraction', 'percent'))}")
    share: Share | None = None
    if "ratio" in node and "value" not in node:
        parts = node["ratio"]
        if not isinstance(parts, list) or len(parts) != 2:
            ck.add(f"{path}.percent.ratio", "expected [numerator, denominator]")
            return None
        num = parser.expr(f"{path}.percent.ratio[0]", parts[0])
        den = parser.expr(f"{path}.percent.ratio[1]", parts[1])
        share = Share(ratio=(num, den), scale=scale) if num and den else None
    elif "value" in node and "ratio" not in node:
        value = parser.expr(f"{path}.percent.value", node["value"])
        share = Share(value=value, scale=scale) if value else None
    else:
        ck.add(f"{path}.percent", "needs exactly one of ratio: [played, duration] or value: <share>")
    if share is None or ts is None:
        return None
    name = str(raw.get("name", f"percent rule {index + 1}"))
    return EventRule(name=name, state=None, timestamp=ts, when=when, kind="percent", percent=share)


def _parse_skip(ck: _Checker, parser: _ExprParser, node: Any) -> list[Condition]:
    if not isinstance(node, list):
        ck.add("skip", "expected a list of conditions")
        return []
    out = []
    for i, item in enumerate(node):
        cond = parser.condition(f"skip[{i}]", item)
        if cond is not None:
            out.append(cond)
    return out


def _parse_dedupe(ck: _Checker, node: Any) -> tuple[str, ...] | None:
    if node is False or node is None:
        return None
    if node is True:
        return ("sessionId", "state")
    keys = node.get("keys") if isinstance(node, dict) else node
    if not isinstance(keys, list) or not keys:
        ck.add("dedupe", "expected true, false, or a list of payload fields such as [sessionId, state]")
        return None
    allowed = [*PAYLOAD_FIELDS, *EVENT_FIELDS, "playedPercent"]
    for k in keys:
        if k not in allowed:
            ck.add("dedupe", f"unknown field '{k}'{_suggest(str(k), allowed)}")
    return tuple(str(k) for k in keys)


class _ExprParser:
    def __init__(self, ck: _Checker, timezone: str, lookups: set[str], hubspot: set[str]) -> None:
        self.ck = ck
        self.timezone = timezone
        self.lookups = lookups
        self.hubspot = hubspot

    def expr(self, path: str, node: Any, *, force_type: str | None = None) -> Expr | None:
        ck = self.ck
        if isinstance(node, str):
            node = {"column": node}
        if not isinstance(node, dict):
            if node is None:
                ck.add(path, "expected a column name or a value rule, got nothing")
            else:
                ck.add(path, f"expected a column name or a value rule, got {_kind(node)}")
            return None
        node = {str(k): v for k, v in node.items()}
        sources = [k for k in SOURCE_KEYS if k in node]
        extra = LOOKUP_KEYS if "lookup" in sources else PARAM_KEYS if "param" in sources else ()
        ck.keys(path, node, SOURCE_KEYS + MODIFIER_KEYS + extra)
        if len(sources) != 1:
            what = "none" if not sources else ", ".join(sources)
            ck.add(path, f"needs exactly one of {', '.join(SOURCE_KEYS)} (found {what})")
            return None
        kind = sources[0]
        kw: dict[str, Any] = {"kind": kind}
        value = node[kind]
        if kind in ("column", "param"):
            if not isinstance(value, str) or not value.strip():
                ck.add(f"{path}.{kind}", "expected a column name")
            kw["column"] = str(value).strip()
            if kind == "param":
                if not isinstance(node.get("key"), str):
                    ck.add(f"{path}.key", "param needs 'key': the name to look for in the list")
                kw["param_key"] = node.get("key")
        elif kind == "const":
            kw["const"] = value
        elif kind in ("coalesce", "hash"):
            if not isinstance(value, list) or not value:
                ck.add(f"{path}.{kind}", "expected a list of columns or value rules")
            else:
                items = [self.expr(f"{path}.{kind}[{i}]", v) for i, v in enumerate(value)]
                kw["items"] = tuple(e for e in items if e is not None)
        elif kind == "add":
            if force_type != "timestamp" and node.get("type") != "timestamp":
                ck.add(f"{path}.add", "add makes a timestamp: use it for an event's timestamp")
            kw["items"] = self._add_items(f"{path}.add", value)
            stray = [k for k in node if k not in ("add", "when")]
            if stray:
                ck.add(path, f"add takes only its list (and when); put {', '.join(stray)} on its first item")
        elif kind == "template":
            if not isinstance(value, str) or not _TEMPLATE_REF.search(value):
                ck.add(f"{path}.template", "expected text with {column} references, e.g. '{viewer}-{view}'")
            kw["template"] = str(value)
        elif kind == "lookup":
            value = value if isinstance(value, str) else _kind(value)  # a list or a mapping names no table
            if value not in self.lookups:
                ck.add(
                    f"{path}.lookup",
                    f"no lookup table named '{value}'{_suggest(str(value), sorted(self.lookups))}",
                )
            kw["lookup"] = str(value)
            if value in self.hubspot and node.get("get") != "contactId":
                ck.add(f"{path}.get", "a hubspot lookup gives 'contactId'")
            match = self.expr(f"{path}.match", node.get("match")) if "match" in node else None
            if match is None and "match" not in node:
                ck.add(f"{path}.match", "lookup needs 'match': the input column whose value is looked up")
            kw["items"] = (match,) if match is not None else ()
            if not isinstance(node.get("get"), str):
                ck.add(f"{path}.get", "lookup needs 'get': the lookup file's column to take")
            kw["lookup_get"] = node.get("get")
        self._modifiers(path, node, kw, force_type)
        return Expr(**kw)

    def _add_items(self, path: str, value: Any) -> tuple[Expr, ...]:
        """``add: [timestamp, duration, ...]``: a time and the durations to add to it, each with its unit."""
        ck = self.ck
        example = "such as [started_at, {column: seconds_watched, unit: s}]"
        if not isinstance(value, list) or len(value) < 2:
            ck.add(path, f"expected a timestamp and one or more durations, {example}")
            return ()
        first = self.expr(f"{path}[0]", value[0], force_type="timestamp")
        items = [first] if first is not None else []
        for i, node in enumerate(value[1:], start=1):
            where = f"{path}[{i}]"
            if isinstance(node, (int, float)) and not isinstance(node, bool):
                ck.add(where, f"a duration needs a unit: {{const: {node}, unit: s}} (ms, s, m or h)")
                continue
            node = {"column": node} if isinstance(node, str) else node
            unit = node.get("unit") if isinstance(node, dict) else None
            if unit not in DURATION_UNITS:
                what = "needs a unit" if unit is None else f"has an unknown unit '{unit}'"
                ck.add(where, f"a duration {what}: ms, s, m or h, {example}")
                continue
            rest = {k: v for k, v in node.items() if k != "unit"}
            if rest.get("type", "float") not in ("int", "float"):
                ck.add(f"{where}.type", "a duration is a number: int or float")
            duration = self.expr(where, {**rest, "type": "float"})
            if duration is not None:
                items.append(replace(duration, duration_ms=DURATION_UNITS[str(unit)]))
        return tuple(items)

    def _modifiers(self, path: str, node: dict[str, Any], kw: dict[str, Any], force_type: str | None) -> None:
        ck = self.ck
        vtype = node.get("type", force_type)
        if vtype is not None and vtype not in VALUE_TYPES:
            ck.add(f"{path}.type", f"unknown type '{vtype}'{_suggest(str(vtype), VALUE_TYPES)}")
        kw["type"] = vtype
        if "map" in node:
            value_map = node["map"]
            if not isinstance(value_map, dict) or not value_map:
                ck.add(f"{path}.map", "expected a mapping of input value → output value")
            else:
                kw["value_map"] = tuple((str(k), v) for k, v in value_map.items())
        for flag in ("case_insensitive", "optional", "lower", "upper"):
            if flag in node:
                if not isinstance(node[flag], bool):
                    ck.add(f"{path}.{flag}", f"expected true or false, got {node[flag]!r}")
                kw[flag] = bool(node[flag])
        unmapped = node.get("unmapped", "keep")
        if unmapped not in ("keep", "null", "skip"):
            ck.add(
                f"{path}.unmapped",
                f"expected keep, null or skip{_suggest(str(unmapped), ['keep', 'null', 'skip'])}",
            )
        kw["unmapped"] = unmapped
        if "default" in node:
            kw["default"] = node["default"]
        if "when" in node:
            kw["when"] = self.condition(f"{path}.when", node["when"])
        ts_keys = [k for k in ("format", "unit", "timezone") if k in node]
        if vtype == "timestamp" or ts_keys:
            if vtype not in (None, "timestamp"):
                ck.add(path, f"{', '.join(ts_keys)} only apply to timestamps, but type is '{vtype}'")
            kw["type"] = "timestamp"
            unit = str(node.get("unit", "auto"))
            if unit not in TIME_UNITS:
                ck.add(f"{path}.unit", f"unknown unit '{unit}'{_suggest(unit, TIME_UNITS)}")
            fmt = str(node.get("format", "auto"))
            if fmt not in ("auto", "iso8601", "epoch") and "%" not in fmt:
                ck.add(
                    f"{path}.format",
                    "expected auto, iso8601, epoch or a strptime pattern like '%d/%m/%Y %H:%M'",
                )
            zone = str(node.get("timezone", self.timezone))
            if "timezone" in node:  # the top-level zone is checked (and reported) once, at 'timezone'
                _check_zone(ck, f"{path}.timezone", zone)
            kw["timestamp"] = TimestampFormat(format=fmt, unit=unit, timezone=zone)

    def condition(self, path: str, node: Any) -> Condition | None:
        ck = self.ck
        raw = ck.mapping_node(path, node)
        if raw is None:
            return None
        raw = {TEST_ALIASES.get(k, k): v for k, v in raw.items()}
        label = str(raw.pop("name", "")) if "name" in raw else ""
        for op in ("all", "any"):
            if op in raw:
                ck.keys(path, raw, (op,))
                items = raw[op]
                if not isinstance(items, list) or not items:
                    ck.add(f"{path}.{op}", "expected a list of conditions")
                    return None
                kids = [self.condition(f"{path}.{op}[{i}]", c) for i, c in enumerate(items)]
                return Condition(op=op, children=tuple(k for k in kids if k is not None), label=label or op)
        if "not" in raw:
            ck.keys(path, raw, ("not",))
            kid = self.condition(f"{path}.not", raw["not"])
            return Condition(op="not", children=(kid,) if kid else (), label=label) if kid else None
        operand_keys = [k for k in ("column", "value", "ratio") if k in raw]
        ck.keys(path, raw, ("column", "value", "ratio", "scale", *TESTS))
        tests = [t for t in TESTS if t in raw]
        if len(operand_keys) != 1:
            ck.add(path, "a condition needs exactly one of column, value, ratio (or all / any / not)")
            return None
        if len(tests) != 1:
            ck.add(path, f"a condition needs exactly one test: {', '.join(TESTS)} (or >, >=, <, <=, ==, !=)")
            return None
        test, arg = tests[0], raw[tests[0]]
        operand: Expr | None = None
        ratio: tuple[Expr, Expr] | None = None
        key = operand_keys[0]
        if key == "ratio":
            parts = raw["ratio"]
            if not isinstance(parts, list) or len(parts) != 2:
                ck.add(f"{path}.ratio", "expected [numerator, denominator]")
                return None
            num = self.expr(f"{path}.ratio[0]", parts[0])
            den = self.expr(f"{path}.ratio[1]", parts[1])
            if num is None or den is None:
                return None
            ratio = (num, den)
        else:
            operand = self.expr(f"{path}.{key}", raw[key])
            if operand is None:
                return None
        scale = raw.get("scale")
        if scale is not None and scale not in SCALES:
            ck.add(f"{path}.scale", f"unknown scale '{scale}'{_suggest(str(scale), SCALES)}")
        if test in ("gt", "gte", "lt", "lte") and not isinstance(arg, int | float):
            ck.add(f"{path}.{test}", f"expected a number, got {arg!r}")
        if test in ("in", "not_in") and not isinstance(arg, list):
            ck.add(f"{path}.{test}", f"expected a list of values, got {arg!r}")
        if test in ("present", "missing", "is_true", "is_false") and not isinstance(arg, bool):
            ck.add(f"{path}.{test}", f"expected true or false, got {arg!r}")
        if test == "matches":
            problem = _regex_problem(arg)
            if problem:
                ck.add(f"{path}.matches", problem)
        if not label:
            subject = raw.get("column") if key == "column" else key
            label = f"{subject} {test} {arg}" if not isinstance(arg, bool) else f"{subject} {test}"
        return Condition(op="test", operand=operand, ratio=ratio, test=test, arg=arg, scale=scale, label=label)


def _regex_problem(pattern: Any) -> str | None:
    """Why Arrow's regular expressions (RE2) refuse ``pattern``, or None.

    RE2 has no backreferences (\\1) nor lookarounds ((?=...)) although Python's ``re`` has both,
    so the pattern is compiled by the engine that will run it.
    """
    if isinstance(pattern, bool) or not isinstance(pattern, str | int | float):
        return f"expected a regular expression as text, got {_kind(pattern)}"
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), str(pattern))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        try:
            re.compile(str(pattern))
        except re.error as py_exc:
            return f"not a valid regular expression ({py_exc})"
        reason = str(exc).split("Invalid regular expression:", 1)[-1].strip()
        return (
            f"not a pattern Arrow's RE2 engine runs ({reason}): it has no backreferences (\\1) "
            "and no lookarounds ((?=...), (?!...))"
        )
    return None


# -- media: -------------------------------------------------------------------------------------
MEDIA_PROPERTIES = ("title", "duration", "oembed_url", "file_url", "thumbnail_url", "poster_url", "details_page_link")
MEDIA_KEYS = (*MEDIA_PROPERTIES, "api", "object_types")
MEDIA_APIS = ("crm", "objects")
# A media's duration is read in the same units as a timestamp's ``add`` (DURATION_UNITS above).


def _parse_media(ck: _Checker, parser: _ExprParser, node: Any, has_external_id: bool) -> MediaSpec | None:
    raw = ck.mapping_node("media", node)
    if raw is None:
        return None
    ck.keys("media", raw, MEDIA_KEYS)
    if not has_external_id:
        ck.add("media", "media objects are described per externalId, but fields.externalId has no rule")
    if "title" not in raw:
        ck.add("media.title", "required: HubSpot needs a title for every media object")
    api = str(raw.get("api", "crm"))
    if api not in MEDIA_APIS:
        ck.add("media.api", f"unknown api '{api}'{_suggest(api, MEDIA_APIS)}")
    unit = "ms"
    properties: dict[str, Expr] = {}
    for name in MEDIA_PROPERTIES:
        if name not in raw:
            continue
        value = raw[name]
        if name == "duration" and isinstance(value, dict) and "unit" in value:
            value = {str(k): v for k, v in value.items()}
            unit = str(value.pop("unit"))
            if unit not in DURATION_UNITS:
                ck.add("media.duration.unit", f"unknown unit '{unit}'{_suggest(unit, list(DURATION_UNITS))}")
        expr = parser.expr(f"media.{name}", value)
        if expr is not None:
            if expr.type == "timestamp":
                ck.add(f"media.{name}", "a media property is not a timestamp")
            properties[name] = expr
    object_types: dict[str, str] = {}
    types_node = raw.get("object_types", {})
    types = ck.mapping_node("media.object_types", types_node) if types_node != {} else {}
    for media_type, object_type in (types or {}).items():
        path = f"media.object_types.{media_type}"
        if media_type not in MEDIA_TYPES:
            ck.add(path, f"unknown media type '{media_type}'{_suggest(media_type, MEDIA_TYPES)}")
        elif not isinstance(object_type, str) or not object_type.strip():
            ck.add(path, "expected the object type's id or name, e.g. '2-1234567' or 'a123_Videos'")
        else:
            object_types[media_type] = object_type.strip()
    if types and api == "objects":
        ck.add("media.object_types", "object types are for api: crm (the objects api takes the media type)")
    return MediaSpec(properties=properties, duration_unit=unit, api=api, object_types=object_types)
