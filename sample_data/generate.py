"""Generate sample play logs (and benchmark inputs) in the formats the shipped mappings read.

    python sample_data/generate.py                # the committed samples in sample_data/
    python sample_data/generate.py --rows 1000000 --out bench/data/generic-1m.parquet

Deterministic: the same arguments give the same bytes. The generic sample holds a
few deliberately invalid rows (each kind `check` reports), listed in INVALID_KINDS.

The vendor samples (Mux Data, GA4 BigQuery, Wistia, OP3) come from vendors.py, beside
this script.
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
BASE_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
MEDIA_TYPES = np.array(["video", "VIDEO", "Video", "audio", "podcast", "document", "image", "other"])
INVALID_KINDS = (
    "no contact", "no media", "bad media type", "bad timestamp", "contact id not a number",
    "page url without name", "timestamp before 2000",
)  # fmt: skip


def canonical(rows: int, seed: int = 7, invalid_every: int = 0, prefix: str = "s") -> pa.Table:
    """Rows of the canonical schema; every ``invalid_every``-th row gets one defect."""
    rng = np.random.default_rng(seed)
    idx = np.arange(rows)
    start_ms = BASE_MS + np.sort(rng.integers(0, 300 * 86_400_000, rows))
    watched = rng.random(rows) < 0.6
    viewed_ms = start_ms + rng.integers(5_000, 3_600_000, rows)
    contact = rng.integers(1, 50_000, rows).astype(np.int64)
    use_utk = rng.random(rows) < 0.2
    media_id = rng.integers(1, 500, rows)
    use_bridge = rng.random(rows) < 0.3
    on_page = rng.random(rows) < 0.5
    started = _iso(start_ms, offset=rng.random(rows) < 0.3)
    viewed = np.where(watched, _iso(viewed_ms, offset=np.zeros(rows, dtype=bool)), "")
    contact_text = np.where(use_utk, "", contact.astype(str))
    # Spreadsheets write ids as floats: keep a share of them that way.
    contact_text = np.where((idx % 7 == 3) & ~use_utk, np.char.add(contact_text, ".0"), contact_text)
    cols = {
        "session_id": np.char.add(f"{prefix}-", idx.astype(str)),
        "contact_id": contact_text,
        "contact_utk": np.where(use_utk, np.char.add("utk", contact.astype(str)), ""),
        "media_bridge_id": np.where(use_bridge, (media_id + 1000).astype(str), ""),
        "external_id": np.where(use_bridge, "", np.char.add("vid-", media_id.astype(str))),
        "media_type": MEDIA_TYPES[rng.integers(0, len(MEDIA_TYPES), rows)],
        "media_name": np.char.add("Episode ", media_id.astype(str)),
        "media_url": np.char.add("https://media.example.com/v/", media_id.astype(str)),
        "page_id": np.where(on_page & (idx % 2 == 0), (media_id + 5000).astype(str), ""),
        "page_url": np.where(
            on_page & (idx % 2 == 1), np.char.add("https://www.example.com/watch/", media_id.astype(str)), ""
        ),
        "page_name": np.where(on_page & (idx % 2 == 1), np.char.add("Watch ", media_id.astype(str)), ""),
        "iframe_url": np.full(rows, "", dtype=object),
        "started_at": started,
        "viewed_at": viewed,
    }
    cols = {k: np.asarray(v).astype(object) for k, v in cols.items()}
    if invalid_every:
        bad = idx[idx % invalid_every == invalid_every - 1]
        kinds = (bad // invalid_every) % len(INVALID_KINDS)
        for row, kind in zip(bad, kinds, strict=True):
            _spoil(cols, int(row), INVALID_KINDS[int(kind)])
    return pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})


def _spoil(cols: dict[str, np.ndarray], row: int, kind: str) -> None:
    if kind == "no contact":
        cols["contact_id"][row] = ""
        cols["contact_utk"][row] = ""
    elif kind == "no media":
        cols["media_bridge_id"][row] = ""
        cols["external_id"][row] = ""
    elif kind == "bad media type":
        cols["media_type"][row] = "hologram"
    elif kind == "bad timestamp":
        cols["started_at"][row] = "yesterday"
    elif kind == "contact id not a number":
        cols["contact_id"][row] = "C-1234"
    elif kind == "page url without name":
        cols["page_id"][row] = ""
        cols["page_url"][row] = "https://www.example.com/orphan"
        cols["page_name"][row] = ""
    elif kind == "timestamp before 2000":
        cols["started_at"][row] = "1999-12-31T23:59:59Z"


def _iso(ms: np.ndarray, offset: np.ndarray) -> np.ndarray:
    utc = ms.astype("datetime64[ms]")
    plain = np.datetime_as_string(utc, unit="s")
    zulu = np.char.add(plain, "Z")
    # Some rows written in +02:00 local time (the same instant).
    shifted = np.datetime_as_string((ms + 7_200_000).astype("datetime64[ms]"), unit="s")
    return np.where(offset, np.char.add(shifted, "+02:00"), zulu)


def write(table: pa.Table, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    name = out.name.lower()
    if name.endswith(".parquet"):
        pq.write_table(table, out, compression="zstd", row_group_size=128_000)
    elif name.endswith(".csv.gz"):
        with pa.CompressedOutputStream(str(out), "gzip") as fh:
            pacsv.write_csv(table, fh)
    else:
        pacsv.write_csv(table, out)


def samples() -> None:
    """The committed sample files."""
    write(canonical(3000, seed=7, invalid_every=97), HERE / "generic" / "plays-2025-h1.csv")
    write(canonical(2000, seed=8, prefix="h2"), HERE / "generic" / "plays-2025-h2.parquet")
    # The vendor generators live beside this script (loaded by path: tests load this file that way too).
    spec = importlib.util.spec_from_file_location("sample_vendors", HERE / "vendors.py")
    assert spec is not None and spec.loader is not None
    vendors = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vendors)
    vendors.vendor_samples()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help="rows of the canonical schema to generate")
    parser.add_argument("--out", type=Path, help="output file (.csv, .csv.gz or .parquet)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--invalid-every", type=int, default=0, help="spoil every N-th row (0: none)")
    args = parser.parse_args()
    if args.rows is None:
        samples()
        return
    write(canonical(args.rows, seed=args.seed, invalid_every=args.invalid_every), args.out)


if __name__ == "__main__":
    main()
