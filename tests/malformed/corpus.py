"""A seeded generator of malformed inputs and mappings (nothing here is committed as a binary).

``input_cases()`` and ``mapping_cases()`` describe each case: its family, the bytes of its files
(built when the case is written out, so collecting the tests stays cheap) and what the product
must do with it: read it (exit 0 or 1), refuse it (exit 2, with a fragment the message must hold),
or either, as long as it says so clearly. The same seed gives the same bytes on every run.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

SEED = 20_261_130
T0 = "2025-01-01T00:00:00Z"
HEADER = ["sid", "cid", "ts"]
READ, REFUSED, EITHER = "read", "refused", "either"

# The mapping every input case is read with: three columns, nothing optional.
INPUT_MAPPING: dict[str, Any] = {
    "fields": {
        "sessionId": "sid",
        "mediaType": {"const": "VIDEO"},
        "contactId": "cid",
        "externalId": {"const": "ext-1"},
    },
    "events": [{"state": "STARTED", "timestamp": "ts"}],
}

Content = bytes | Callable[[], bytes]


@dataclass
class InputCase:
    id: str
    family: str
    files: dict[str, Content]
    target: str = ""  # what is passed as INPUT, relative to the case folder; default: the only file
    expect: str = EITHER
    needle: str = ""  # a fragment the error message must hold when the case is refused
    setup: Callable[[Path], None] | None = None  # for what bytes cannot say: FIFOs, symlinks

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for name, content in self.files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content() if callable(content) else content)
        if self.setup is not None:
            self.setup(root)
        return root / (self.target or next(iter(self.files)))


@dataclass
class MappingCase:
    id: str
    family: str
    text: Content
    expect: str = EITHER
    needle: str = ""
    extra: dict[str, Content] = field(default_factory=dict)  # lookup files beside the mapping

    def write(self, root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        for name, content in self.extra.items():
            (root / name).write_bytes(content() if callable(content) else content)
        path = root / "mapping.yaml"
        path.write_bytes(self.text() if callable(self.text) else self.text)
        return path


# ---- building blocks --------------------------------------------------------------------------------


def rows(n: int, start: int = 1) -> list[list[str]]:
    return [[f"s{i}", str(i), T0] for i in range(start, start + n)]


def csv_bytes(header: list[str], body: list[list[str]], delimiter: str = ",", end: str = "\n") -> bytes:
    lines = [delimiter.join(header), *(delimiter.join(r) for r in body)]
    return (end.join(lines) + end).encode()


def good_csv(n: int = 20) -> bytes:
    return csv_bytes(HEADER, rows(n))


def jsonl_bytes(objects: list[Any]) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


def good_objects(n: int = 20) -> list[dict[str, Any]]:
    return [{"sid": f"s{i}", "cid": str(i), "ts": T0} for i in range(1, n + 1)]


def parquet_bytes(table: pa.Table, **options: Any) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **options)
    return sink.getvalue()


def good_parquet(n: int = 20) -> bytes:
    return parquet_bytes(pa.Table.from_pylist(good_objects(n)))


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _odd_parquet(column: str, array: pa.Array, **options: Any) -> Callable[[], bytes]:
    """A three-row Parquet file whose ``column`` is ``array`` (the others are good)."""

    def build() -> bytes:
        n = len(array)
        base = {"sid": pa.array([f"s{i}" for i in range(1, n + 1)]), "cid": pa.array([str(i) for i in range(1, n + 1)])}
        base["ts"] = pa.array([T0] * n)
        base[column] = array
        return parquet_bytes(pa.table(base), **options)

    return build


# ---- inputs -----------------------------------------------------------------------------------------


def input_cases(seed: int = SEED) -> list[InputCase]:
    rng = random.Random(seed)
    cases: list[InputCase] = []

    def add(id: str, family: str, files: dict[str, Content] | Content, **kw: Any) -> None:
        if not isinstance(files, dict):
            files = {id.split("/")[-1]: files}
        cases.append(InputCase(f"{family}/{id}", family, files, **kw))

    # gzip: truncated, corrupt, not gzip, empty, several members
    body = good_csv(3000)
    packed = gz(body)
    for i in range(5):
        cut = rng.randrange(10, len(packed) - 8)
        add(f"truncated-{i}.csv.gz", "gzip", packed[:cut], expect=REFUSED)
    for i in range(3):
        at = rng.randrange(20, len(packed) - 20)
        flipped = bytearray(packed)
        flipped[at] ^= 0xFF
        add(f"corrupt-{i}.csv.gz", "gzip", bytes(flipped))
    add("plain-text.csv.gz", "gzip", good_csv(), expect=REFUSED, needle="gzip")
    add("empty.csv.gz", "gzip", b"", expect=REFUSED)
    add("empty-member.csv.gz", "gzip", gz(b""), expect=REFUSED, needle="empty")
    add("two-members.csv.gz", "gzip", gz(good_csv(5)) + gz(csv_bytes([], rows(5, 6))[1:]), expect=READ)
    add("truncated.jsonl.gz", "gzip", gz(jsonl_bytes(good_objects(3000)))[:-100], expect=REFUSED)
    add("only-header.csv.gz", "gzip", gz(b"sid,cid,ts\n"), expect=READ, needle="has a header but no data rows")
    add("junk-inside.csv.gz", "gzip", gz(rng.randbytes(5000)), expect=REFUSED)
    add("trailing-garbage.csv.gz", "gzip", gz(good_csv()) + rng.randbytes(64))

    # binary junk under every extension
    for ext in ("csv", "tsv", "jsonl", "parquet", "csv.gz"):
        for i in range(3):
            add(f"junk-{i}.{ext}", "junk", rng.randbytes(rng.randrange(1, 70_000)), expect=REFUSED)
    add("png.csv", "junk", b"\x89PNG\r\n\x1a\n" + rng.randbytes(2000), expect=REFUSED)
    add("nuls.csv", "junk", b"\x00" * 4096, expect=REFUSED)
    add("zip.csv", "junk", b"PK\x03\x04" + rng.randbytes(3000), expect=REFUSED)
    add("parquet-named.csv", "junk", good_parquet(), expect=REFUSED, needle="binary")

    # empty files
    for name in ("empty.csv", "empty.tsv", "empty.jsonl", "empty.parquet"):
        add(name, "empty", b"", expect=REFUSED, needle="empty")
    add("blank-lines.csv", "empty", b"\n\n \n\t\n", expect=REFUSED, needle="empty")
    add("blank-lines.jsonl", "empty", b"\n\n\n", expect=REFUSED, needle="empty")
    add("only-bom.csv", "empty", b"\xef\xbb\xbf", expect=REFUSED)
    add("header-only.csv", "empty", b"sid,cid,ts\n", expect=READ, needle="has a header but no data rows")

    # byte order marks
    add("utf8-bom.csv", "bom", b"\xef\xbb\xbf" + good_csv(), expect=READ)
    add("utf8-bom.jsonl", "bom", b"\xef\xbb\xbf" + jsonl_bytes(good_objects()), expect=READ)
    add("utf8-bom.tsv", "bom", b"\xef\xbb\xbf" + csv_bytes(HEADER, rows(5), "\t"), expect=READ)
    add("double-bom.csv", "bom", b"\xef\xbb\xbf\xef\xbb\xbf" + good_csv())
    add("utf16-le.csv", "bom", good_csv().decode().encode("utf-16"))
    add("utf16-be.csv", "bom", b"\xfe\xff" + good_csv().decode().encode("utf-16-be"))
    add("utf32.csv", "bom", good_csv().decode().encode("utf-32"))
    add("bom-mid-file.csv", "bom", good_csv(3) + b"\xef\xbb\xbfs9,9," + T0.encode() + b"\n")

    # encodings
    latin = "sid,cid,ts\n" + "".join(f"s{i}é,{i},{T0}\n" for i in range(1, 30))
    add("latin1-head.csv", "encoding", latin.encode("latin-1"), expect=REFUSED, needle="utf-8")
    add("cp1252-quotes.csv", "encoding", f"sid,cid,ts\n“s1”,1,{T0}\n".encode("cp1252"), expect=REFUSED)
    late = good_csv(4000)
    add("invalid-late.csv", "encoding", late + b"s\xff,1," + T0.encode() + b"\n", expect=REFUSED, needle="line 4002")
    add("invalid-late-ragged.csv", "encoding", late + b"x,\xff\n" + late[11:], expect=REFUSED, needle="line 4002")
    add("invalid-at-1500.csv", "encoding", _invalid_at(good_csv(200), 1500), expect=REFUSED, needle="utf-8")
    add("overlong.csv", "encoding", good_csv(3) + b"s\xc0\xaf,1," + T0.encode() + b"\n", expect=REFUSED)
    add("surrogate.csv", "encoding", good_csv(3) + b"s\xed\xa0\x80,1," + T0.encode() + b"\n", expect=REFUSED)
    add("cut-char-at-eof.csv", "encoding", good_csv(60) + b"s\xe2\x82", expect=REFUSED)
    add("invalid-header.csv", "encoding", b"s\xffid,cid,ts\n" + good_csv()[11:], expect=REFUSED)
    add("latin1.jsonl", "encoding", jsonl_bytes(good_objects()).replace(b's1"', b's1\xe9"'))
    add("invalid-late.jsonl", "encoding", jsonl_bytes(good_objects(3000)) + b'{"sid": "\xff"}\n', expect=READ)

    # ragged rows
    for i in range(8):
        table = rows(200)
        for _ in range(rng.randrange(1, 20)):
            r = rng.randrange(len(table))
            table[r] = table[r][: rng.randrange(0, 3)] if rng.random() < 0.5 else table[r] + ["x"] * rng.randrange(1, 4)
        add(f"ragged-{i}.csv", "ragged", csv_bytes(HEADER, table), expect=READ)
    add("all-short.csv", "ragged", csv_bytes(HEADER, [r[:2] for r in rows(30)]), expect=READ)
    add("trailing-delimiter.csv", "ragged", csv_bytes(HEADER, [[*r, ""] for r in rows(30)]), expect=READ)
    add("wider-header.csv", "ragged", csv_bytes([*HEADER, "extra"], rows(30)), expect=READ)
    add("ragged-late.csv", "ragged", good_csv(3_000) + b"a,b\n" + good_csv(10)[11:], expect=READ)

    # quotes
    quoted = good_csv(100).decode().splitlines(keepends=True)
    for i, (at, text) in enumerate([(50, 's50,"50,'), (2, '"s2,2,'), (99, 's99,99,"'), (60, 's60,6"0,')]):
        lines = [*quoted]
        lines[at] = text + T0 + "\n"
        add(f"quote-{i}.csv", "quotes", "".join(lines).encode(), expect=READ)
    big = good_csv(40_000).decode().splitlines(keepends=True)
    big[1_000] = 's50,"50,' + T0 + "\n"
    add("unterminated-big.csv", "quotes", "".join(big).encode(), expect=READ)
    add("quoted-newlines.csv", "quotes", f'sid,cid,ts\n"s\n1",1,{T0}\n"s2","2","{T0}"\n'.encode(), expect=READ)
    add("doubled-quotes.csv", "quotes", f'sid,cid,ts\n"s""1",1,{T0}\n'.encode(), expect=READ)
    add("quote-at-eof.csv", "quotes", good_csv(5) + b'"', expect=READ)
    add("quoted-header.csv", "quotes", b'"sid","cid","ts"\n' + good_csv()[11:], expect=READ)
    add("quote-in-header.csv", "quotes", b'sid,"cid,ts\n' + good_csv()[11:])

    # huge fields, long lines
    add(
        "value-5mb.csv",
        "huge",
        lambda: csv_bytes([*HEADER, "blob"], [[*r, "z" * (5 << 20)] for r in rows(2)]),
        expect=READ,
    )
    add(
        "value-5mb.jsonl",
        "huge",
        lambda: jsonl_bytes([{**o, "blob": "y" * (5 << 20)} for o in good_objects(2)]),
        expect=READ,
    )
    add(
        "name-1mb.csv", "huge", lambda: csv_bytes([*HEADER, "x" * (1 << 20)], [[*r, "v"] for r in rows(3)]), expect=READ
    )
    add(
        "last-line-no-newline.jsonl",
        "huge",
        lambda: (
            jsonl_bytes(good_objects(3))
            + json.dumps({"sid": "s9", "cid": "9", "ts": T0, "b": "q" * (2 << 20)}).encode()
        ),
        expect=READ,
    )
    add(
        "value-3mb-quoted.csv",
        "huge",
        lambda: csv_bytes([*HEADER, "blob"], [[*r, '"' + "a,\n" * (1 << 20) + '"'] for r in rows(2)]),
        expect=READ,
    )

    # wide headers
    wide = [*HEADER, *(f"c{i}" for i in range(20_011))]
    add("wide-20014.csv", "wide", lambda: csv_bytes(wide, [[*r, *([""] * 20_011)] for r in rows(3)]), expect=READ)
    add(
        "wide-header-only.csv", "wide", lambda: csv_bytes(wide, []), expect=READ, needle="has a header but no data rows"
    )
    add(
        "wide-dupes.csv",
        "wide",
        lambda: csv_bytes([*HEADER, *(f"c{i % 2500}" for i in range(5000))], [["a"] * 5003]),
        expect=REFUSED,
        needle="duplicate",
    )
    add(
        "wide-20014.tsv", "wide", lambda: csv_bytes(wide, [[*r, *(["-"] * 20_011)] for r in rows(3)], "\t"), expect=READ
    )

    # duplicate and blank headers
    add(
        "dupes.csv",
        "dupes",
        csv_bytes(["sid", "cid", "ts", "sid"], [[*r, "x"] for r in rows(5)]),
        expect=REFUSED,
        needle="duplicate",
    )
    add(
        "dupes-after-trim.csv",
        "dupes",
        csv_bytes(["sid", "cid", "ts", " sid "], [[*r, "x"] for r in rows(5)]),
        expect=REFUSED,
        needle="duplicate",
    )
    add("case-differs.csv", "dupes", csv_bytes(["sid", "cid", "ts", "SID"], [[*r, "x"] for r in rows(5)]), expect=READ)
    add(
        "blank-name.csv",
        "dupes",
        csv_bytes(["sid", "", "cid", "ts"], [[r[0], "", r[1], r[2]] for r in rows(5)]),
        expect=REFUSED,
        needle="no name",
    )
    add(
        "dupes.parquet",
        "dupes",
        lambda: parquet_bytes(
            pa.table(
                [pa.array(["a"]), pa.array(["1"]), pa.array([T0]), pa.array(["x"])], names=["sid", "cid", "ts", "sid"]
            )
        ),
        expect=REFUSED,
        needle="duplicate",
    )
    add(
        "duplicate-keys.jsonl",
        "dupes",
        b'{"sid": "a", "sid": "b", "cid": "1", "ts": "' + T0.encode() + b'"}\n',
        expect=READ,
    )

    # Parquet: broken files
    pbytes = good_parquet(500)
    for i in range(4):
        add(f"truncated-{i}.parquet", "parquet", pbytes[: rng.randrange(4, len(pbytes) - 1)], expect=REFUSED)
    add("footer-cut.parquet", "parquet", pbytes[:-5], expect=REFUSED)
    add("wrong-magic-start.parquet", "parquet", b"PAR2" + pbytes[4:], expect=REFUSED, needle="PAR1")
    add("wrong-magic-end.parquet", "parquet", pbytes[:-4] + b"PAR2", expect=REFUSED)
    add("only-magic.parquet", "parquet", b"PAR1", expect=REFUSED)
    add("magic-and-junk.parquet", "parquet", b"PAR1" + rng.randbytes(3000) + b"PAR1", expect=REFUSED)
    add(
        "corrupt-footer-length.parquet",
        "parquet",
        pbytes[:-8] + (2**31 - 1).to_bytes(4, "little") + b"PAR1",
        expect=REFUSED,
    )
    add("gzipped.parquet.gz", "parquet", gz(pbytes), expect=REFUSED, needle="gzip")
    add("csv-named.parquet", "parquet", good_csv(), expect=REFUSED, needle="PAR1")

    # Parquet: odd types, each in a column the mapping reads
    utf8_bytes = pa.array([b"s1", b"s2", b"s3"], pa.binary())
    add("binary-text.parquet", "parquet-types", _odd_parquet("sid", utf8_bytes), expect=READ)
    add(
        "binary-bytes.parquet",
        "parquet-types",
        _odd_parquet("sid", pa.array([b"s1", b"\xff\xfe", b"s3"], pa.binary())),
        expect=READ,
    )
    add(
        "large-binary.parquet",
        "parquet-types",
        _odd_parquet("sid", pa.array([b"s1", b"\x80", b"s3"], pa.large_binary())),
        expect=READ,
    )
    add(
        "fixed-binary.parquet",
        "parquet-types",
        _odd_parquet("sid", pa.array([b"s1", b"s2", b"\xc3("], pa.binary(2))),
        expect=READ,
    )
    add(
        "uint64-max.parquet",
        "parquet-types",
        _odd_parquet("cid", pa.array([1, 2**64 - 1, 3], pa.uint64())),
        expect=READ,
    )
    add("int64-min.parquet", "parquet-types", _odd_parquet("cid", pa.array([1, -(2**63), 3], pa.int64())), expect=READ)
    add("uint32.parquet", "parquet-types", _odd_parquet("cid", pa.array([1, 2**32 - 1, 3], pa.uint32())), expect=READ)
    add("decimal.parquet", "parquet-types", _odd_parquet("cid", pa.array([1, 2, 3], pa.decimal128(38, 2))), expect=READ)
    add(
        "decimal-huge.parquet",
        "parquet-types",
        _odd_parquet("cid", pa.array([10**37, 2, 3], pa.decimal128(38, 0))),
        expect=READ,
    )
    add(
        "float-nan.parquet",
        "parquet-types",
        _odd_parquet("cid", pa.array([1.0, float("nan"), float("inf")])),
        expect=READ,
    )
    add("bool-id.parquet", "parquet-types", _odd_parquet("cid", pa.array([True, False, None])), expect=READ)
    add("list-sid.parquet", "parquet-types", _odd_parquet("sid", pa.array([["a"], [], None])), expect=READ)
    add("struct-sid.parquet", "parquet-types", _odd_parquet("sid", pa.array([{"a": 1}, {"a": 2}, None])), expect=READ)
    add(
        "map-sid.parquet",
        "parquet-types",
        _odd_parquet("sid", pa.array([[("k", "v")], [], None], pa.map_(pa.string(), pa.string()))),
        expect=READ,
    )
    add(
        "dictionary-sid.parquet",
        "parquet-types",
        _odd_parquet("sid", pa.array(["a", "b", "a"]).dictionary_encode()),
        expect=READ,
    )
    add(
        "ts-tz.parquet",
        "parquet-types",
        _odd_parquet("ts", pa.array([0, 1_700_000_000_000, None], pa.timestamp("ms", "Europe/Paris"))),
        expect=READ,
    )
    add(
        "ts-naive-ns.parquet",
        "parquet-types",
        _odd_parquet("ts", pa.array([0, 1_700_000_000_000_000_000, 2**62], pa.timestamp("ns"))),
        expect=READ,
    )
    add(
        "ts-int96.parquet",
        "parquet-types",
        _odd_parquet(
            "ts",
            pa.array([0, 1_700_000_000_000_000_000, None], pa.timestamp("ns")),
            use_deprecated_int96_timestamps=True,
        ),
        expect=READ,
    )
    add("ts-date.parquet", "parquet-types", _odd_parquet("ts", pa.array([0, 20_000, None], pa.date32())), expect=READ)
    add("ts-time.parquet", "parquet-types", _odd_parquet("ts", pa.array([0, 1000, None], pa.time32("ms"))), expect=READ)
    add("null-type.parquet", "parquet-types", _odd_parquet("cid", pa.nulls(3)), expect=READ)
    add(
        "large-string.parquet",
        "parquet-types",
        _odd_parquet("sid", pa.array(["a", "b", "c"], pa.large_string())),
        expect=READ,
    )
    add("zero-rows.parquet", "parquet-types", lambda: parquet_bytes(pa.Table.from_pylist(good_objects(1)).slice(0, 0)))
    add(
        "no-columns.parquet",
        "parquet-types",
        lambda: parquet_bytes(pa.table({"other": pa.array([1, 2])})),
        expect=REFUSED,
        needle="missing column",
    )

    # JSON Lines
    for i in range(5):
        lines = [json.dumps(o) for o in good_objects(300)]
        for _ in range(rng.randrange(1, 15)):
            r = rng.randrange(len(lines))
            lines[r] = lines[r][: rng.randrange(len(lines[r]))]
        add(f"bad-lines-{i}.jsonl", "jsonl", ("\n".join(lines) + "\n").encode(), expect=READ)
    add("arrays.jsonl", "jsonl", jsonl_bytes([["s1", "1", T0]] * 5), expect=REFUSED, needle="JSON object")
    add("scalars.jsonl", "jsonl", jsonl_bytes([1, "two", None, True]), expect=REFUSED, needle="JSON object")
    add("some-scalars.jsonl", "jsonl", jsonl_bytes([*good_objects(5), 7, "x", [1]]), expect=READ)
    add(
        "deep-10000.jsonl",
        "jsonl",
        jsonl_bytes(good_objects(2))
        + b'{"sid":"s3","cid":"3","ts":"'
        + T0.encode()
        + b'","x":'
        + b"[" * 10_000
        + b"]" * 10_000
        + b"}\n",
        expect=READ,
    )
    add(
        "deep-10000-first.jsonl",
        "jsonl",
        b'{"x":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}\n" + jsonl_bytes(good_objects(2)),
        expect=READ,
    )
    add("deep-only.jsonl", "jsonl", b"[" * 10_000 + b"]" * 10_000 + b"\n", expect=REFUSED)
    add("deep-150.jsonl", "jsonl", jsonl_bytes([{**o, "x": _nest(150)} for o in good_objects(3)]), expect=READ)
    add("deep-90.jsonl", "jsonl", jsonl_bytes([{**o, "x": _nest(90)} for o in good_objects(3)]), expect=READ)
    add(
        "brackets-in-strings.jsonl", "jsonl", jsonl_bytes([{**o, "x": "[" * 500} for o in good_objects(3)]), expect=READ
    )
    add(
        "mixed-types.jsonl",
        "jsonl",
        jsonl_bytes(
            [
                {"sid": "s1", "cid": 1, "ts": T0},
                {"sid": 2, "cid": "2", "ts": 1_700_000_000},
                {"sid": "s3", "cid": {"a": 1}, "ts": [T0]},
                {"sid": None, "cid": 4.5, "ts": True},
            ]
        ),
        expect=READ,
    )
    add(
        "mixed-types-late.jsonl",
        "jsonl",
        lambda: jsonl_bytes([*good_objects(3_000), {"sid": ["x"], "cid": "1", "ts": T0}]),
        expect=READ,
    )
    add("empty-objects.jsonl", "jsonl", b"{}\n{}\n", expect=REFUSED)
    add(
        "nan-literal.jsonl",
        "jsonl",
        b'{"sid": "s1", "cid": NaN, "ts": "' + T0.encode() + b'"}\n' + jsonl_bytes(good_objects(2)),
        expect=READ,
    )
    add(
        "huge-numbers.jsonl",
        "jsonl",
        b'{"sid": "s1", "cid": 1e400, "ts": "'
        + T0.encode()
        + b'"}\n{"sid": "s2", "cid": 99999999999999999999999, "ts": 1}\n',
        expect=READ,
    )
    add(
        "lone-surrogate.jsonl",
        "jsonl",
        b'{"sid": "\\ud800", "cid": "1", "ts": "' + T0.encode() + b'"}\n' + jsonl_bytes(good_objects(2)),
        expect=READ,
    )
    add("crlf.jsonl", "jsonl", jsonl_bytes(good_objects(5)).replace(b"\n", b"\r\n"), expect=READ)
    add("cr-only.jsonl", "jsonl", jsonl_bytes(good_objects(5)).replace(b"\n", b"\r"))
    add("pretty-array.json", "jsonl", json.dumps(good_objects(3), indent=2).encode(), expect=REFUSED)
    add(
        "trailing-commas.jsonl",
        "jsonl",
        b'{"sid": "s1", "cid": "1", "ts": "' + T0.encode() + b'",}\n' + jsonl_bytes(good_objects(2)),
        expect=READ,
    )
    add("nul-in-line.jsonl", "jsonl", jsonl_bytes(good_objects(2)) + b'{"sid": "s\x00", "cid": "1"}\n')

    # TSV oddities
    add("commas-named.tsv", "tsv", good_csv(), expect=REFUSED, needle="missing column")
    add("quotes.tsv", "tsv", f'sid\tcid\tts\n"s\t1"\t1\t{T0}\n'.encode(), expect=READ)
    add("commas-in-values.tsv", "tsv", f"sid\tcid\tts\ns,1\t1\t{T0}\n".encode(), expect=READ)
    add("tabs-ragged.tsv", "tsv", f"sid\tcid\tts\ns1\t1\t\t{T0}\ns2\t2\t{T0}\n".encode(), expect=READ)
    add("trailing-tab-header.tsv", "tsv", f"sid\tcid\tts\t\ns1\t1\t{T0}\t\n".encode(), expect=REFUSED, needle="no name")
    add("crlf.tsv", "tsv", csv_bytes(HEADER, rows(5), "\t", "\r\n"), expect=READ)
    add("cr-only.csv", "tsv", csv_bytes(HEADER, rows(5), ",", "\r"), expect=READ)

    # globs, folders
    add(
        "nothing-matches",
        "paths",
        {"data/a.csv": good_csv()},
        target="data/*.parquet",
        expect=REFUSED,
        needle="matches no file",
    )
    add(
        "bracket-glob",
        "paths",
        {"data/a.csv": good_csv()},
        target="data/[z].csv",
        expect=REFUSED,
        needle="matches no file",
    )
    add(
        "no-such-file",
        "paths",
        {"data/a.csv": good_csv()},
        target="data/missing.csv",
        expect=REFUSED,
        needle="no such file",
    )
    add("empty-folder", "paths", {"data/.keep": b""}, target="data", expect=REFUSED, needle="holds no")
    add(
        "folder-of-other-files",
        "paths",
        {"data/a.txt": b"x", "data/b.xlsx": b"PK"},
        target="data",
        expect=REFUSED,
        needle="holds no",
    )
    add("unknown-extension", "paths", {"a.xlsx": b"PK\x03\x04"}, expect=REFUSED, needle="format")
    add(
        "folder-good-and-empty",
        "paths",
        {"data/a.csv": good_csv(), "data/b.csv": b""},
        target="data",
        expect=REFUSED,
        needle="b.csv",
    )
    add(
        "folder-good-and-junk-parquet",
        "paths",
        {"data/a.csv": good_csv(), "data/b.parquet": b"junk"},
        target="data",
        expect=REFUSED,
        needle="b.parquet",
    )
    add(
        "folder-mixed-formats",
        "paths",
        {
            "data/a.csv": good_csv(5),
            "data/b.jsonl": jsonl_bytes(good_objects(5)),
            "data/c.parquet": good_parquet(5),
            "data/d.tsv.gz": gz(csv_bytes(HEADER, rows(5), "\t")),
        },
        target="data",
        expect=READ,
    )
    add(
        "folder-hidden-and-nested",
        "paths",
        {"data/.hidden.csv": b"junk\x00", "data/x/y/z.csv": good_csv(3)},
        target="data",
        expect=READ,
    )
    add(
        "folder-bad-header",
        "paths",
        {"data/a.csv": good_csv(), "data/b.csv": b"other,cols\n1,2\n"},
        target="data",
        expect=REFUSED,
        needle="b.csv",
    )
    add(
        "fifo",
        "paths",
        {"data/a.csv": good_csv()},
        target="data/pipe.csv",
        setup=_fifo,
        expect=REFUSED,
        needle="not a regular file",
    )
    add("folder-with-fifo", "paths", {"data/a.csv": good_csv()}, target="data", setup=_fifo, expect=READ)
    add("symlink-loop", "paths", {"data/a.csv": good_csv()}, target="data", setup=_symlink_loop, expect=READ)
    add(
        "dangling-symlink", "paths", {"data/a.csv": good_csv()}, target="data/gone.csv", setup=_dangling, expect=REFUSED
    )
    add("directory-named-csv", "paths", {"data/d.csv/a.csv": good_csv()}, target="data", expect=READ)
    return cases


def _invalid_at(data: bytes, offset: int) -> bytes:
    return data[:offset] + b"\xff" + data[offset + 1 :]


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def _fifo(root: Path) -> None:
    os.mkfifo(root / "data" / "pipe.csv")


def _symlink_loop(root: Path) -> None:
    os.symlink("..", root / "data" / "loop")


def _dangling(root: Path) -> None:
    os.symlink("nowhere.csv", root / "data" / "gone.csv")


# ---- mappings ---------------------------------------------------------------------------------------

# Every construct of the mapping language once; the corpus breaks it in every place.
RICH_MAPPING: dict[str, Any] = {
    "version": 1,
    "name": "rich",
    "description": "every construct once",
    "timezone": "Europe/Paris",
    "input": {"format": "csv", "delimiter": ",", "encoding": "utf-8", "quote_char": '"', "batch_rows": 1000},
    "lookups": {"contacts": {"path": "contacts.csv", "key": "email", "normalize": ["trim", "lower"]}},
    "skip": [
        {"column": "kind", "equals": "ad", "name": "ads"},
        {"any": [{"column": "sid", "missing": True}, {"not": {"column": "sid", "matches": "^s[0-9]+$"}}]},
    ],
    "fields": {
        "sessionId": {"hash": ["sid", {"const": "x"}]},
        "mediaType": {
            "column": "kind",
            "map": {"video": "VIDEO", "audio": "AUDIO"},
            "case_insensitive": True,
            "default": "VIDEO",
        },
        "contactId": {
            "lookup": "contacts",
            "match": {"coalesce": ["email", {"const": "nobody@example.com"}]},
            "get": "contact_id",
        },
        "externalId": {"template": "{sid}-{kind}"},
        "mediaName": {"column": "title", "lower": True, "optional": True},
        "pageId": {"column": "cid", "type": "int"},
    },
    "events": [
        {"state": "STARTED", "timestamp": {"column": "ts", "format": "iso8601", "timezone": "UTC"}},
        {
            "state": {"column": "kind", "map": {"video": "VIEWED"}},
            "timestamp": {"column": "ts", "format": "%Y-%m-%dT%H:%M:%SZ"},
            "when": {"ratio": ["played", "duration"], "gte": 0.5},
        },
        {"type": "percent", "percent": {"ratio": ["played", "duration"], "scale": "fraction"}, "timestamp": "ts"},
    ],
    "dedupe": ["sessionId", "state"],
}
RICH_HEADER = ["sid", "cid", "ts", "kind", "email", "title", "played", "duration"]
CONTACTS = b"email,contact_id\na@example.com,101\nnobody@example.com,102\n"


def rich_data(n: int = 20) -> bytes:
    body = [
        [f"s{i}", str(i), T0, "video" if i % 3 else "audio", "A@example.com ", f"T{i}", str(i), "20"]
        for i in range(1, n + 1)
    ]
    return csv_bytes(RICH_HEADER, body)


WRONG_VALUES: list[Any] = [None, True, 12, -1.5, "", "text", [], [1, "x", None], {}, {"k": "v"}, {"column": "sid"}]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _replaced(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return out


def _dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()


def mapping_cases(seed: int = SEED) -> list[MappingCase]:
    rng = random.Random(seed)
    cases: list[MappingCase] = []
    rich = _dump(RICH_MAPPING)
    lookup = {"contacts.csv": CONTACTS}

    def add(id: str, family: str, text: Content, **kw: Any) -> None:
        kw.setdefault("extra", lookup)
        cases.append(MappingCase(f"{family}/{id}", family, text, **kw))

    add("valid", "control", rich, expect=READ)

    # not UTF-8
    add(
        "latin1",
        "encoding",
        rich.replace(b"every construct", "évery construct".encode("latin-1")),
        expect=REFUSED,
        needle="not UTF-8",
    )
    add("utf16", "encoding", rich.decode().encode("utf-16"), expect=REFUSED, needle="not UTF-8")
    add("random-bytes", "encoding", rng.randbytes(3000), expect=REFUSED)
    add("utf8-bom", "encoding", b"\xef\xbb\xbf" + rich, expect=READ)
    add("nul-bytes", "encoding", rich.replace(b"rich", b"ri\x00ch"), expect=REFUSED)

    # not YAML
    for i, text in enumerate(
        [
            b"fields: [\n",
            b"fields:\n  a: 1\n b: 2\n",
            b"\tfields: {}\n",
            b"fields: {a: 1\n",
            b"key: 'unclosed\n",
            b"- a\nb: c\n",
            b"%YAML 9.9\n---\na: 1\n",
            b"!!python/object:os.system {}\n",
            b"a: !!binary 'QQ'\n",
            b"a: !!int 'x'\n",
            b"a: !!timestamp 'x'\n",
            b"&a [*b]\n",
        ]
    ):
        add(f"syntax-{i}", "not-yaml", text, expect=REFUSED, needle="line")
    add("bad-date", "not-yaml", rich.replace(b"name: rich", b"name: 2025-13-45"), expect=REFUSED, needle="month")

    # YAML, but not a mapping
    for i, text in enumerate([b"", b"~\n", b"- a\n- b\n", b"hello\n", b"42\n", b"---\n...\n", b"# only a comment\n"]):
        add(f"not-a-mapping-{i}", "not-mapping", text, expect=REFUSED, needle="expected a mapping")

    # nesting
    add(
        "flow-10000",
        "deep",
        b"fields: " + b"[" * 10_000 + b"]" * 10_000 + b"\n",
        expect=REFUSED,
        needle="nested deeper",
    )
    add(
        "block-1200",
        "deep",
        b"a:\n" + b"".join(b"  " * (i + 1) + b"b:\n" for i in range(1200)),
        expect=REFUSED,
        needle="nested deeper",
    )
    add("not-not-not", "deep", _dump({**RICH_MAPPING, "skip": [_nots(70)]}), expect=REFUSED, needle="nested deeper")
    add("not-x10", "deep", _dump({**RICH_MAPPING, "skip": [_nots(10)]}), expect=READ)

    # unknown keys, with a did-you-mean
    for path, key in [
        ((), "feilds"),
        (("fields",), "sesionId"),
        (("input",), "delimeter"),
        (("events", 0), "timestamps"),
        (("lookups", "contacts"), "kye"),
        (("fields", "mediaName"), "colum"),
    ]:
        doc = copy.deepcopy(RICH_MAPPING)
        node: Any = doc
        for part in path:
            node = node[part]
        node[key] = "x"
        add(f"unknown-{key}", "unknown-keys", _dump(doc), expect=REFUSED, needle="unknown")

    # wrong types everywhere: each place of the rich mapping gets a value of another kind
    places = _paths(RICH_MAPPING)
    for path in places:
        current = _node_at(RICH_MAPPING, path)
        choices = [v for v in WRONG_VALUES if type(v) is not type(current)]
        value = rng.choice(choices)
        name = ".".join(str(p) for p in path)
        add(f"{name}={json.dumps(value)}", "wrong-types", _dump(_replaced(RICH_MAPPING, path, value)))

    # regular expressions
    for i, pattern in enumerate(
        ["(a)\\1", "(?=a)b", "(?<!x)y", "(?P<n>a)(?P=n)", "a{1001}", "[z-a]", "(", "\\", "a**"]
    ):
        doc = _replaced(RICH_MAPPING, ("skip", 1, "any", 1, "not", "matches"), pattern)
        add(f"regex-{i}", "regex", _dump(doc), expect=REFUSED, needle="skip[1].any[1].not.matches")

    # time zones
    for i, zone in enumerate(["Mars/Olympus", "UTC+2", "../../etc/passwd", "", "Europe/Paris\x00", "+02:00"]):
        add(f"zone-{i}", "timezone", _dump({**RICH_MAPPING, "timezone": zone}), expect=REFUSED, needle="timezone")
        event = copy.deepcopy(RICH_MAPPING)
        event["events"][0]["timestamp"]["timezone"] = zone
        add(f"event-zone-{i}", "timezone", _dump(event), expect=REFUSED, needle="events[0].timestamp.timezone")

    # templates
    for i, template in enumerate(
        ["no references", "{", "{}", "{ }", "{sid", "{{sid}}", "{missing_column}", "{sid}{sid}" * 500]
    ):
        doc = _replaced(RICH_MAPPING, ("fields", "externalId", "template"), template)
        add(f"template-{i}", "template", _dump(doc))

    # lookups
    add(
        "lookup-unknown-name",
        "lookup",
        _dump(_replaced(RICH_MAPPING, ("fields", "contactId", "lookup"), "contcts")),
        expect=REFUSED,
        needle="did you mean",
    )
    add("lookup-missing-file", "lookup", rich, extra={}, expect=REFUSED, needle="contacts.csv")
    add(
        "lookup-binary-file",
        "lookup",
        rich,
        extra={"contacts.csv": rng.randbytes(500) + b"\x00"},
        expect=REFUSED,
        needle="contacts.csv",
    )
    add(
        "lookup-no-key-column",
        "lookup",
        rich,
        extra={"contacts.csv": b"mail,contact_id\na,1\n"},
        expect=REFUSED,
        needle="contacts.csv",
    )
    add("lookup-empty-file", "lookup", rich, extra={"contacts.csv": b""}, expect=REFUSED, needle="contacts.csv")
    add(
        "lookup-path-is-folder",
        "lookup",
        _dump(_replaced(RICH_MAPPING, ("lookups", "contacts", "path"), ".")),
        expect=REFUSED,
    )
    add("lookup-ragged-file", "lookup", rich, extra={"contacts.csv": CONTACTS + b"x\n\xff,1,2\n"})
    add(
        "lookup-source-unknown",
        "lookup",
        _dump(_replaced(RICH_MAPPING, ("lookups", "contacts", "source"), "crm")),
        expect=REFUSED,
        needle="lookups.contacts.source",
    )

    # cycles and bombs
    add("alias-cycle", "aliases", rich + b"extra: &x [*x]\n", expect=REFUSED, needle="cycle")
    add("merge-cycle", "aliases", b"a: &a {<<: *a}\n", expect=REFUSED)
    add("billion-laughs", "aliases", _laughs(9, 9), expect=REFUSED, needle="aliases")
    add(
        "billion-laughs-nested",
        "aliases",
        rich + b"bomb:\n" + _indented(_laughs(12, 10)),
        expect=REFUSED,
        needle="aliases",
    )
    add("merge-bomb", "aliases", _merge_bomb(25), expect=REFUSED)
    add("few-aliases", "aliases", rich.replace(b"timestamp: ts\n", b"timestamp: &t ts\n") + b"", expect=READ)

    # huge files
    add(
        "huge-9mb",
        "huge",
        lambda: (
            b"fields:\n  mediaName:\n    column: m\n    map:\n"
            + b"".join(b"      k%07d: v\n" % i for i in range(700_000))
        ),
        expect=REFUSED,
        needle="larger than",
    )
    add(
        "big-map-1mb",
        "huge",
        lambda: _dump(
            _replaced(RICH_MAPPING, ("fields", "mediaName", "map"), {f"m{i}": f"Name {i}" for i in range(10_000)})
        ),
        expect=READ,
    )
    add("long-line", "huge", lambda: rich.replace(b"name: rich", b"name: " + b"n" * (3 << 20)), expect=READ)
    return cases


def _node_at(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _nots(depth: int) -> dict[str, Any]:
    cond: dict[str, Any] = {"column": "sid", "present": True}
    for _ in range(depth):
        cond = {"not": cond}
    return cond


def _laughs(levels: int, width: int) -> bytes:
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [" + ", ".join([f"*lol{i - 1}"] * width) + "]")
    return ("\n".join(lines) + "\n").encode()


def _merge_bomb(levels: int) -> bytes:
    lines = ["m0: &m0 {a: 1}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: [*m{i - 1}, *m{i - 1}]}}")
    return ("\n".join(lines) + "\n").encode()


def _indented(text: bytes) -> bytes:
    return b"".join(b"  " + line + b"\n" for line in text.splitlines())
