"""Benchmark inputs: the canonical schema from ``sample_data/generate.py``, written chunk by chunk.

A set of sizes is written in one pass over the largest: the first ``n`` rows of every file are
the same rows, so the 1M file is the head of the 5M one and the baseline slice the head of both.
A file is reused when its sidecar (``NAME.meta.json``) records the same rows, scheme and bytes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import json
import os
import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data"
MAPPING = ROOT / "mappings" / "generic.yaml"
CHUNK_ROWS = 500_000
INVALID_EVERY = 1000  # 0.1% of rows carry one defect, so the error path is part of the figure
# Bump when the way files are generated changes: old files are then regenerated.
SCHEME = "canonical-v1"


def _generator() -> ModuleType:
    path = ROOT / "sample_data" / "generate.py"
    spec = importlib.util.spec_from_file_location("bench_generate", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def label(rows: int) -> str:
    """1000000 → '1m', 200000 → '200k'."""
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}m"
    if rows % 1000 == 0:
        return f"{rows // 1000}k"
    return str(rows)


@dataclass(frozen=True)
class Output:
    path: Path
    rows: int
    kind: str  # "csv" or "parquet"


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _meta(path: Path, rows: int, scheme: str) -> dict[str, Any]:
    return {"rows": rows, "scheme": scheme, "generator": generator_digest(), "bytes": path.stat().st_size}


_DIGEST: list[str] = []


def generator_digest() -> str:
    """A digest of ``canonical`` and its helpers as parsed code: a change regenerates the inputs,
    a change of formatting or of the rest of ``generate.py`` does not."""
    if not _DIGEST:
        gen = _generator()
        parts = [ast.dump(ast.parse(textwrap.dedent(inspect.getsource(gen.canonical))))]
        for name in ("_spoil", "_iso"):
            if hasattr(gen, name):
                parts.append(ast.dump(ast.parse(textwrap.dedent(inspect.getsource(getattr(gen, name))))))
        parts.append(repr([getattr(gen, n, None) for n in ("BASE_MS", "MEDIA_TYPES", "INVALID_KINDS")]))
        _DIGEST.append(hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16])
    return _DIGEST[0]


def is_current(path: Path, rows: int, scheme: str = SCHEME) -> bool:
    meta = _meta_path(path)
    if not path.exists() or not meta.exists():
        return False
    try:
        return bool(json.loads(meta.read_text()) == _meta(path, rows, scheme))
    except (OSError, ValueError):
        return False


class _Writer:
    """One output file, written to a temporary name and renamed once complete."""

    def __init__(self, out: Output, schema: pa.Schema) -> None:
        self.out = out
        self.tmp = out.path.with_name(out.path.name + ".tmp")
        self.written = 0
        self._w: Any
        if out.kind == "parquet":
            self._w = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        else:
            self._w = pacsv.CSVWriter(str(self.tmp), schema)

    def take(self, chunk: pa.Table) -> None:
        need = self.out.rows - self.written
        if need <= 0:
            return
        part = chunk.slice(0, need)
        if self.out.kind == "parquet":
            self._w.write_table(part, row_group_size=128_000)
        else:
            self._w.write_table(part)
        self.written += part.num_rows

    def close(self, scheme: str) -> None:
        self._w.close()
        os.replace(self.tmp, self.out.path)
        _meta_path(self.out.path).write_text(json.dumps(_meta(self.out.path, self.out.rows, scheme)))


def _write_all(outputs: Sequence[Output], chunks: Iterator[pa.Table], scheme: str) -> None:
    writers: list[_Writer] = []
    try:
        for chunk in chunks:
            if not writers:
                writers = [_Writer(o, chunk.schema) for o in outputs]
            for w in writers:
                w.take(chunk)
            if all(w.written >= w.out.rows for w in writers):
                break
        for w in writers:
            w.close(scheme)
    except BaseException:
        for w in writers:
            w.tmp.unlink(missing_ok=True)
        raise


def ensure(
    outputs: Sequence[Output],
    chunks: Callable[[], Iterator[pa.Table]],
    scheme: str,
    log: Callable[[str], None],
) -> list[Path]:
    """Write the outputs that are missing or stale, in one pass over ``chunks()``."""
    DATA.mkdir(parents=True, exist_ok=True)
    stale = [o for o in outputs if not is_current(o.path, o.rows, scheme)]
    if stale:
        log("generating " + ", ".join(o.path.name for o in stale) + " ...")
        _write_all(stale, chunks(), scheme)
    else:
        log("reusing " + ", ".join(o.path.name for o in outputs))
    return [o.path for o in outputs]


def canonical_chunks(invalid_every: int = INVALID_EVERY) -> Iterator[pa.Table]:
    """An endless, deterministic stream of canonical rows, half a million at a time."""
    gen = _generator()
    i = 0
    while True:
        yield gen.canonical(CHUNK_ROWS, seed=7 + i, invalid_every=invalid_every, prefix=f"r{i}")
        i += 1


def check_inputs(sizes: Sequence[int], baseline_rows: int, log: Callable[[str], None]) -> dict[str, Path]:
    """CSV and Parquet files of each size, plus the baseline's CSV slice; keys like 'csv-1m'."""
    outputs = {
        f"{kind}-{label(n)}": Output(DATA / f"canonical-{label(n)}.{kind}", n, kind)
        for n in sizes
        for kind in ("csv", "parquet")
    }
    outputs[f"slice-{label(baseline_rows)}"] = Output(
        DATA / f"canonical-{label(baseline_rows)}.csv", baseline_rows, "csv"
    )
    ensure(list(outputs.values()), canonical_chunks, SCHEME, log)
    return {k: o.path for k, o in outputs.items()}


def send_input(events: int, log: Callable[[str], None]) -> Path:
    """A CSV that ``mappings/generic.yaml`` turns into exactly ``events`` valid STARTED events."""

    def chunks() -> Iterator[pa.Table]:
        table = _generator().canonical(events, seed=11, prefix="send")
        blank = pa.array([""] * table.num_rows, pa.string())
        yield table.set_column(table.schema.get_field_index("viewed_at"), "viewed_at", blank)

    out = Output(DATA / f"send-{label(events)}.csv", events, "csv")
    ensure([out], chunks, SCHEME + "-send", log)
    return out.path
