"""What a run found: counts by stage, invalid events by reason with samples, distinct ids."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from importer.mapping.keyset import DistinctCounter, row_hashes

if TYPE_CHECKING:
    from importer.mapping.plan import PreparedBatch

SAMPLES_PER_REASON = 3


@dataclass
class Report:
    files: int = 0
    rows: int = 0
    events: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_events: int = 0
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    previews: list[str] = field(default_factory=list)
    sessions: DistinctCounter = field(default_factory=DistinctCounter)
    contacts: DistinctCounter = field(default_factory=DistinctCounter)
    media: DistinctCounter = field(default_factory=DistinctCounter)
    media_objects: Any = None  # the media sync's plan (importer.hubspot.media.SyncReport), mappings with media:
    _seen_files: set[str] = field(default_factory=set)

    def add_batch(self, batch: PreparedBatch) -> None:
        if batch.source.path not in self._seen_files:
            self._seen_files.add(batch.source.path)
            self.files += 1
        self.rows += batch.rows
        self.skipped.update(batch.skipped)
        if batch.duplicates:
            self.skipped["duplicate event (dedupe)"] += batch.duplicates
            self.duplicates += batch.duplicates
        events = batch.events
        if events.num_rows:
            played = events.column("playedPercent")
            if played.null_count == events.num_rows:
                self.events.update(_counts(events.column("state")))
            else:
                percent = pc.binary_join_element_wise("PERCENT_", pc.cast(played, pa.string()), "")
                self.events.update(_counts(pc.coalesce(events.column("state"), percent)))
            # Hash each distinct value of the batch once: contacts and media repeat a lot.
            self.sessions.add(row_hashes([pc.unique(events.column("sessionId")).drop_null()]))
            self.contacts.add(_either(events.column("contactId"), events.column("contactUtk")))
            self.media.add(_either(events.column("mediaBridgeId"), events.column("externalId")))
        invalid = batch.invalid
        if invalid.num_rows:
            self.invalid_events += invalid.num_rows
            reasons = pc.coalesce(
                pc.binary_join_element_wise(invalid.column("field"), _first_reason(invalid.column("error")), ": "),
                invalid.column("error"),
            )
            self.invalid.update(_counts(reasons))
            self._sample(invalid, reasons)

    def _sample(self, invalid: pa.Table, reasons: pa.ChunkedArray | pa.Array) -> None:
        wanted = {r for r in self.invalid if len(self.samples.get(r, [])) < SAMPLES_PER_REASON}
        if not wanted:
            return
        mask = pc.is_in(reasons, value_set=pa.array(sorted(wanted), pa.string()))
        rows = invalid.filter(mask).slice(0, SAMPLES_PER_REASON * len(wanted))
        for reason, rec in zip(pc.filter(reasons, mask).to_pylist(), rows.to_pylist(), strict=False):
            bucket = self.samples.setdefault(reason, [])
            if len(bucket) < SAMPLES_PER_REASON:
                bucket.append({k: rec[k] for k in ("source_file", "row_number", "state", "field", "value")})

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "rows": self.rows,
            "events": dict(self.events),
            "events_total": sum(self.events.values()),
            "skipped": dict(self.skipped),
            "duplicates": self.duplicates,
            "invalid": self.invalid_events,
            "invalid_by_reason": dict(self.invalid.most_common()),
            "distinct": {
                "sessions": self.sessions.count(),
                "contacts": self.contacts.count(),
                "media": self.media.count(),
                "exact": self.sessions.exact and self.contacts.exact and self.media.exact,
            },
            **({"media_objects": self.media_objects.to_dict()} if self.media_objects is not None else {}),
        }

    def render(self) -> str:
        lines = [f"Rows read        {self.rows:>12,}   ({self.files} file{'s' if self.files != 1 else ''})"]
        total = sum(self.events.values())
        lines.append(
            f"Valid events     {total:>12,}   " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.events.items()))
        )
        lines.append(f"Invalid events   {self.invalid_events:>12,}")
        lines.append(f"Rows skipped     {sum(self.skipped.values()):>12,}")
        for reason, count in self.skipped.most_common():
            lines.append(f"  {count:>10,}  {reason}")

        def fmt(c: DistinctCounter) -> str:
            return f"{c.count():,}" if c.exact else f"~{c.count():,}"

        lines.append(
            f"Distinct         sessions {fmt(self.sessions)}, contacts {fmt(self.contacts)}, media {fmt(self.media)}"
        )
        if self.invalid:
            lines.append("Invalid by reason:")
            for reason, count in self.invalid.most_common():
                lines.append(f"  {count:>10,}  {reason}")
                for s in self.samples.get(reason, []):
                    where = f"{s['source_file']}:{s['row_number'] if s['row_number'] is not None else '?'}"
                    value = "" if s["value"] is None else f" value={s['value']!r}"
                    state = f" {s['state']}" if s["state"] else ""
                    lines.append(f"              e.g. {where}{state}{value}")
        return "\n".join(lines)


def _either(ids: pa.ChunkedArray, names: pa.ChunkedArray) -> np.ndarray:
    """Hashes of the distinct non-null values of an id column, else its text alternative, in a batch."""
    id_values = pc.unique(ids).drop_null()
    name_values = pc.unique(pc.filter(names, pc.is_null(ids))).drop_null()
    # An id and a text never share a hash: the id is hashed as an int, the text as text.
    return np.concatenate([row_hashes([id_values]), row_hashes([name_values])])


def _counts(col: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    vc = pc.value_counts(col)
    return {str(k): int(c) for k, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)}


def _first_reason(errors: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The reason part of the first 'field: reason' message."""
    first = pc.replace_substring_regex(errors, r";.*$", "")
    return pc.replace_substring_regex(first, r"^[^:]*:\s*", "")
