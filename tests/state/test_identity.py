"""The journal key of an event is pinned: changing it would make every state directory forget
what it sent, and the next run would send everything again."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from importer.state.identity import event_keys, key_ints, key_text, payload_hash

TABLE = pa.table(
    {
        "sessionId": pa.array(["s-1", "s-1", "s-2", None, "ü-3"]),
        "state": pa.array(["started", "completed", "started", "started", None]),
        "payload": pa.array(['{"a":1}', "{}", "x", "y", "z"]),
    }
)


def _texts(dedupe: tuple[str, ...] | None, table: pa.Table = TABLE) -> list[str]:
    k1, k2 = event_keys(table, dedupe)
    return [key_text(a, b) for a, b in zip(k1.tolist(), k2.tolist(), strict=True)]


def test_session_and_state_keys_keep_their_values() -> None:
    assert _texts(("sessionId", "state")) == [
        "63da71831632641b382e9bdc7fbbf8b4",
        "a116e3f0d06e92beb35f1eb95da8c2ce",
        "f06fa067647f9fcd8c2784659e92c049",
        "bd9eb95a320c0a1318d1b4f68c7d7a24",
        "7449172ebd2a9b88b55ee66980bf7c3d",
    ]


def test_payload_keys_without_dedupe_keep_their_values() -> None:
    assert _texts(None) == [
        "1626070e559bc450ef0d4009b7fed2a7",
        "a6697e67b94997a858aec3328f3fefcc",
        "a21a5583060c837adf075f4138fefce6",
        "38e50f65d9be1e160a231de2c2606709",
        "a4b3d49a1c2777008fee7986baed1458",
    ]


def test_single_and_integer_key_columns_keep_their_values() -> None:
    assert _texts(("sessionId",))[:3] == [
        "fca8ebb4bba6924cd74cad2f5ff74300",
        "fca8ebb4bba6924cd74cad2f5ff74300",
        "1970e7ae84aa43a05b90eefadbf4c575",
    ]
    ints = pa.table({"mediaId": pa.array([7, None], pa.int64()), "ts": pa.array([1700000000000, 0], pa.int64())})
    assert _texts(("mediaId", "ts"), ints) == ["58724b4bc3e236f258a70a429b6b6a93", "d00906e6208d0e8783c36d1fba50cd20"]


def test_key_text_round_trips_and_payload_hash_is_pinned() -> None:
    k1, k2 = event_keys(TABLE, ("sessionId", "state"))
    for a, b in zip(k1.tolist(), k2.tolist(), strict=True):
        assert key_ints(key_text(a, b)) == (a, b)
    assert payload_hash(b'{"a":1}') == 2273192342946969294


def test_in_run_dedupe_uses_the_journal_keys_first_half() -> None:
    from importer.state.identity import dedupe_keys

    cols = [TABLE.column("sessionId").combine_chunks(), TABLE.column("state").combine_chunks()]
    k1, _ = event_keys(TABLE, ("sessionId", "state"))
    assert dedupe_keys(cols).view("int64").tolist() == k1.tolist()
    assert key_text(int(dedupe_keys(cols).view("int64")[0]), 0).startswith("63da71831632641b")


def test_the_pipeline_carries_the_same_keys_the_journal_computes(tmp_path: Path) -> None:
    from support import GENERIC_MAPPING, generator

    from importer.mapping.spec import load_mapping
    from importer.run.pipeline import Pipeline
    from importer.state.identity import KEY_COLUMN

    generator().write(generator().canonical(300, seed=21, invalid_every=9, prefix="i"), tmp_path / "p.csv")
    mapping = load_mapping(str(GENERIC_MAPPING))
    batches = list(Pipeline(mapping, [str(tmp_path / "p.csv")]).batches())
    events = pa.concat_tables([b.events for b in batches])
    assert KEY_COLUMN in events.column_names and events.num_rows > 300
    carried = event_keys(events, mapping.identity)
    fresh = event_keys(events.drop_columns([KEY_COLUMN]), mapping.identity)
    assert carried[0].tolist() == fresh[0].tolist()
    assert carried[1].tolist() == fresh[1].tolist()
