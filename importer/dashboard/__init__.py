"""The run report: one self-contained HTML page of a state directory, for the people who own the import.

``data`` aggregates the journal in SQLite (bounded memory at any journal size), ``charts`` draws
with matplotlib into inline SVG, ``page`` writes the HTML (no script, no request). Reads state;
writes one file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from importer.errors import ConfigError


def build_report(state_dir: str | Path, *, now: float | None = None) -> str:
    """The report of ``state_dir`` as an HTML document."""
    from importer.dashboard import charts
    from importer.dashboard.data import gather
    from importer.dashboard.page import render

    data = gather(state_dir, now=now)
    made = [
        charts.progress(data.outcomes),
        charts.by_day(data.by_day),
        charts.sending(data.bins),
        charts.quota(data.quota_days, data.daily, data.reserve),
        charts.reasons(data.reasons),
        charts.media(data.top_media, data.media),
    ]
    return render(data, {c.key: c for c in made if c is not None})


def write_report(state_dir: str | Path, out: str | Path, *, now: float | None = None) -> Path:
    """Write the report to ``out`` atomically (mode 0600: it names input files and sample values)."""
    html = build_report(state_dir, now=time.time() if now is None else now)
    path = Path(out)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"cannot write the report {path} ({exc.strerror or exc})") from None
    return path
