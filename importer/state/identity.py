"""An event's identity: the one function from its dedupe key to its journal key.

The journal key is two independent 64-bit SipHashes (through pandas) of the
event's dedupe fields joined with a unit separator (sessionId + state by
default; the whole payload when dedupe is off). Journal keys are written to
disk: if this function ever changed, every state directory would forget what
it sent and a rerun would send everything again. ``tests/state/test_identity.py``
pins its values.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from importer.mapping.keyset import hash_keys

_KEY_SALT_1 = "journal-key-1..."
_KEY_SALT_2 = "journal-key-2..."
_MASK = (1 << 64) - 1
KEY_COLUMN = "_k1"  # the first half of the journal key, carried from dedupe to admission


def dedupe_keys(columns: list[pa.Array]) -> np.ndarray:
    """In-run dedupe's key of each row (uint64): the first half of its journal key, so the run and the
    journal tell events apart the same way."""
    return hash_keys(columns, salt=_KEY_SALT_1)


def event_keys(events: pa.Table, dedupe: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """Each event's journal key as two int64 arrays (SQLite integers).

    The first half is taken from ``KEY_COLUMN`` when dedupe left it there (it is ``dedupe_keys`` of
    the same columns), so a run hashes each key once.
    """
    names = list(dedupe) if dedupe else ["payload"]
    cols = [events.column(n).combine_chunks() for n in names]
    if dedupe and KEY_COLUMN in events.column_names:
        k1 = np.asarray(events.column(KEY_COLUMN).to_numpy(), dtype=np.uint64).view(np.int64)
    else:
        k1 = dedupe_keys(cols).view(np.int64)
    k2 = hash_keys(cols, salt=_KEY_SALT_2).view(np.int64)
    return k1, k2


def key_text(k1: int, k2: int) -> str:
    """A journal key as 32 hex digits (carried in results files for ``retry``)."""
    return f"{k1 & _MASK:016x}{k2 & _MASK:016x}"


def key_ints(text: str) -> tuple[int, int]:
    """The inverse of ``key_text``."""
    a, b = int(text[:16], 16), int(text[16:32], 16)
    return (a - (1 << 64) if a >= 1 << 63 else a), (b - (1 << 64) if b >= 1 << 63 else b)


def payload_hash(payload: bytes) -> int:
    """What the journal keeps of the payload an event was sent with (to tell a changed row)."""
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big", signed=True)


def payload_hashes(events: pa.Table) -> np.ndarray:
    """``payload_hash`` of every event's payload column."""
    return np.array([payload_hash(p.encode()) for p in events.column("payload").to_pylist()], dtype=np.int64)
