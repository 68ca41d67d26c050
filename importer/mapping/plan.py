"""A compiled mapping: one vectorised pass turns a batch of rows into a table of events.

The event table has one row per event (a row may give STARTED and VIEWED),
typed payload columns named as HubSpot names them, the row's identity, and the
error columns of ``importer.mapping.validate``.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.errors import InputError
from importer.mapping.arrays import bools
from importer.mapping.coerce import as_text, to_float, to_int, to_share
from importer.mapping.lookups import LoadedLookup
from importer.mapping.spec import MEDIA_TYPES, PAYLOAD_FIELDS, PLAY_CONTEXTS, STATES, Expr, Mapping, walk
from importer.mapping.validate import ERROR_COLUMNS, ErrorColumns
from importer.mapping.values import Frame, Value, condition_mask, evaluate
from importer.source.readers import BadRow, Batch, SourceFile, delimiter_hint

_GROUPS = (("contactId", "contactUtk"), ("mediaBridgeId", "externalId"))
_ENUMS = {"mediaType": pa.array(MEDIA_TYPES), "externalPlayContext": pa.array(PLAY_CONTEXTS)}

EVENT_SCHEMA = pa.schema(
    [
        pa.field("_row", pa.int64()),
        pa.field("_rule", pa.int32()),
        pa.field("_type", pa.string()),
        pa.field("state", pa.string()),
        pa.field("playedPercent", pa.int64()),
        pa.field("occurredTimestamp", pa.int64()),
        *[pa.field(name, pa.int64() if kind == "int" else pa.string()) for name, kind in PAYLOAD_FIELDS.items()],
        *[pa.field(name, pa.string()) for name in ERROR_COLUMNS],
    ]
)


@dataclass
class PreparedBatch:
    """One batch after every stage but sending: the valid events with their payloads, and the invalid
    ones as results records (made by ``importer.run.pipeline``)."""

    source: SourceFile
    rows: int
    events: pa.Table
    invalid: pa.Table
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0


@dataclass
class MappedBatch:
    """The events of one batch, with what was skipped and what the parser rejected."""

    source: SourceFile
    rows: int
    events: pa.Table
    skipped: Counter[str] = field(default_factory=Counter)
    bad_rows: list[BadRow] = field(default_factory=list)


class Plan:
    """A mapping compiled against its lookup files; ``apply`` maps one batch."""

    def __init__(self, mapping: Mapping) -> None:
        self.mapping = mapping
        wanted: dict[str, set[str]] = {name: set() for name in mapping.lookups}
        optional: dict[str, set[str]] = {name: set() for name in mapping.lookups}
        for expr in walk(mapping.exprs()):
            if expr.kind == "lookup" and expr.lookup in wanted and expr.lookup_get:
                wanted[expr.lookup].add(expr.lookup_get)
                if expr.optional:
                    optional[expr.lookup].add(expr.lookup_get)
        self.lookups = {
            name: LoadedLookup.load(spec, wanted[name], optional[name])
            for name, spec in mapping.lookups.items()
            if wanted[name] and spec.source == "file"
        }
        for name, spec in mapping.lookups.items():
            if spec.source == "hubspot":  # filled from the contact cache (importer.hubspot.contacts)
                self.lookups[name] = LoadedLookup.empty(spec, "contactId", "contact not in the HubSpot cache")
        self.columns = mapping.top_columns()

    def lookup_exprs(self, name: str) -> list[Expr]:
        """The lookup rules that read table ``name``."""
        return [e for e in walk(self.mapping.exprs()) if e.kind == "lookup" and e.lookup == name]

    def check_columns(self, source: SourceFile, available: list[str]) -> None:
        """Raise ``InputError`` when a source lacks a column the mapping needs."""
        paths = self.mapping.column_paths()
        missing = sorted({p.split(".")[0] for p, optional in paths.items() if not optional} - set(available))
        if not missing:
            return
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name, available, n=1)
            if close:
                hints.append(f"'{name}' → did you mean '{close[0]}'?")
        raise InputError(
            f"{source.path}: missing column(s) {', '.join(missing)} used by the mapping",
            hint=" ".join(h for h in [*hints, delimiter_hint(available), f"Available: {', '.join(available)}"] if h),
        )

    def apply(self, batch: Batch) -> MappedBatch:
        n = batch.num_rows
        frame = Frame(batch.data, n, self.lookups)
        skipped: Counter[str] = Counter()
        keep = np.ones(n, dtype=bool)
        for i, cond in enumerate(self.mapping.skip):
            hit = bools(condition_mask(cond, frame)) & keep
            if hit.any():
                skipped[f"skip[{i}] {cond.label}"] += int(hit.sum())
                keep &= ~hit
        errors = ErrorColumns(n)
        columns: dict[str, pa.Array] = {}
        notes: list[tuple[str, pa.Array, pa.Array, str]] = []
        for name, kind in PAYLOAD_FIELDS.items():
            expr = self.mapping.fields.get(name)
            if expr is None:
                columns[name] = pa.nulls(n, pa.int64() if kind == "int" else pa.string())
                continue
            value = evaluate(expr, frame)
            if value.skip is not None:
                hit = bools(value.skip) & keep
                if hit.any():
                    skipped[f"fields.{name}: value not in map"] += int(hit.sum())
                    keep &= ~hit
            columns[name] = self._coerce(name, kind, value, errors)
            notes.extend((name, miss, key, msg) for miss, key, msg in value.notes)
        for name, miss, key, msg in notes:
            group = next((g for g in _GROUPS if name in g), (name,))
            unresolved = miss
            for member in group:
                unresolved = pc.and_(unresolved, pc.is_null(columns[member]))
            errors.add(unresolved, name, key, msg)

        parts = [self._rule_events(i, frame, keep, skipped) for i in range(len(self.mapping.events))]
        events = self._assemble(parts, frame, columns, errors, batch) if parts else EVENT_SCHEMA.empty_table()
        return MappedBatch(batch.source, n, events, skipped, batch.bad_rows)

    def _coerce(self, name: str, kind: str, value: Value, errors: ErrorColumns) -> pa.Array:
        if value.bad is not None:
            errors.add(value.bad, name, value.raw, value.reason)
        if kind == "int":
            ints, bad = to_int(value.values)
            errors.add(bad, name, value.values, "not an integer id")
            return ints
        text = as_text(value.values)
        if kind != "enum":
            return text
        # 'video' is VIDEO; a value HubSpot does not know stays as the file wrote it ('hologram'),
        # so that the report and the results show the value the user can find in the file.
        upper = pc.utf8_upper(text)
        return pc.if_else(pc.is_in(upper, value_set=_ENUMS[name]), upper, text)

    def _rule_events(self, index: int, frame: Frame, keep: np.ndarray, skipped: Counter[str]) -> _RuleEvents:
        rule = self.mapping.events[index]
        mask = keep.copy()
        if rule.when is not None:
            mask &= bools(condition_mask(rule.when, frame))
        if rule.percent is not None:
            return self._percent_events(index, frame, mask, skipped)
        if isinstance(rule.state, Expr):
            state_value = evaluate(rule.state, frame)
            state = pc.utf8_upper(as_text(state_value.values))
            known = pc.is_in(state, value_set=pa.array(STATES))
            state = pc.if_else(known, state, pa.scalar(None, pa.string()))
            unmapped = mask & ~bools(known)
            if unmapped.any():
                skipped[f"events[{index}] {rule.name}: state not mapped"] += int(unmapped.sum())
            mask &= ~unmapped
            rows = np.flatnonzero(mask)
            return _RuleEvents(index, rows, pc.take(state, pa.array(rows, pa.int64())), None)
        rows = np.flatnonzero(mask)
        return _RuleEvents(index, rows, pa.repeat(pa.scalar(rule.state), len(rows)), None)

    def _percent_events(self, index: int, frame: Frame, mask: np.ndarray, skipped: Counter[str]) -> _RuleEvents:
        """One media-played-percent event per quartile each row reached: 0, 25, ... up to its share."""
        rule = self.mapping.events[index]
        share_spec = rule.percent
        assert share_spec is not None
        if share_spec.ratio is not None:
            num, num_bad = to_float(evaluate(share_spec.ratio[0], frame).values)
            den, den_bad = to_float(evaluate(share_spec.ratio[1], frame).values)
            share = pc.divide(num, pc.if_else(pc.greater(den, 0), den, None))
            bad, what = pc.or_(num_bad, den_bad), "played or duration is not a number"
        else:
            assert share_spec.value is not None
            share, bad, marked = to_share(evaluate(share_spec.value, frame).values)
            # "62%" says it is a percent; otherwise scale decides (fraction: values over 1 are percents).
            over_one = pc.greater(share, 1.0) if share_spec.scale == "fraction" else pa.scalar(True)
            share = pc.if_else(pc.or_(marked, over_one), pc.divide(share, 100.0), share)
            what = "share is not a number"
        unreadable = mask & bools(bad)
        if unreadable.any():  # no quartile can be told: counted, not guessed
            skipped[f"events[{index}] {rule.name}: {what}"] += int(unreadable.sum())
        values = np.asarray(pc.fill_null(share, -1.0).to_numpy(zero_copy_only=False), dtype=float)
        reached = np.floor(np.clip(values, 0.0, 1.0) * 4 + 1e-9).astype(np.int64)
        valid = mask & (values >= 0) & np.isfinite(values)
        rows = np.concatenate([np.flatnonzero(valid & (reached >= q)) for q in range(5)])
        quartiles = np.concatenate([np.full(int((valid & (reached >= q)).sum()), 25 * q) for q in range(5)])
        return _RuleEvents(index, rows, pa.nulls(len(rows), pa.string()), quartiles)

    def _assemble(
        self,
        parts: list[_RuleEvents],
        frame: Frame,
        columns: dict[str, pa.Array],
        errors: ErrorColumns,
        batch: Batch,
    ) -> pa.Table:
        """The events of every rule in row order (then rule, then quartile), each column taken once."""
        rows = np.concatenate([p.rows for p in parts])
        rule = np.concatenate([np.full(len(p.rows), p.index, dtype=np.int32) for p in parts])
        order: pa.Array | None = None
        if len(parts) > 1:
            # A stable sort keeps rule order, then quartile order, among one row's events.
            order_np = np.argsort(rows, kind="stable")
            rows, rule, order = rows[order_np], rule[order_np], pa.array(order_np)

        def in_order(pieces: list[pa.Array]) -> pa.Array:
            joined = pa.concat_arrays(pieces) if len(pieces) > 1 else pieces[0]
            return joined if order is None else pc.take(joined, order)

        idx = pa.array(rows, pa.int64())
        stamps = [evaluate(self.mapping.events[p.index].timestamp, frame) for p in parts]
        ev_errors = errors.take(idx)
        part_idx = [pa.array(p.rows, pa.int64()) for p in parts]
        bad_parts = [
            i for i, ts in enumerate(stamps) if ts.bad is not None and pc.any(pc.take(ts.bad, part_idx[i])).as_py()
        ]
        if bad_parts:
            raw = in_order(
                [
                    pc.take(as_text(ts.raw if ts.raw is not None else ts.values), part_idx[i])
                    for i, ts in enumerate(stamps)
                ]
            )
            for i in bad_parts:
                bad = stamps[i].bad
                assert bad is not None
                pieces = [
                    pc.take(bad, part_idx[j]) if j == i else pa.array(np.zeros(len(p.rows), dtype=bool))
                    for j, p in enumerate(parts)
                ]
                ev_errors.add(in_order(pieces), "occurredTimestamp", raw, stamps[i].reason)
        kinds = pa.array([r.kind for r in self.mapping.events], pa.string())
        rule_ids = pa.array(rule)
        percents = [pa.nulls(len(p.rows), pa.int64()) if p.percent is None else pa.array(p.percent, pa.int64())
                    for p in parts]  # fmt: skip
        out: dict[str, pa.Array] = {
            "_row": pc.take(batch.row_numbers, idx),
            "_rule": rule_ids,
            "_type": pc.take(kinds, rule_ids),
            "state": in_order([p.state for p in parts]),
            "playedPercent": in_order(percents),
            "occurredTimestamp": in_order([pc.take(ts.values, part_idx[i]) for i, ts in enumerate(stamps)]),
        }
        for name in PAYLOAD_FIELDS:
            out[name] = pc.take(columns[name], idx)
        out.update(ev_errors.columns())
        return pa.table(out, schema=EVENT_SCHEMA)


@dataclass
class _RuleEvents:
    """One event rule's events in one batch: their rows, state and quartile (before ordering)."""

    index: int
    rows: np.ndarray
    state: pa.Array
    percent: np.ndarray | None
