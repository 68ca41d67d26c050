"""The report page: one HTML file with its style and charts inline, no script, no request.

A Content-Security-Policy that allows nothing but the inline style makes that a property of the
page, not a promise: a browser opening it fetches nothing, and nothing runs.
"""

from __future__ import annotations

from html import escape

from importer.clock import format_duration
from importer.dashboard.charts import Chart
from importer.dashboard.data import ReportData, Run
from importer.dashboard.text import number, percent, when
from importer.hubspot.pacing import per_day

EXIT_MEANING = {
    0: "all sent",
    1: "some invalid or failed",
    2: "configuration or input error",
    3: "stopped early, resumable",
    4: "state directory locked",
}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink: #1d1d1f; --muted: #555; --line: #d0d0d0; --panel: #f6f6f6; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 980px; padding: 24px 20px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-top: 8px; border-top: 1px solid var(--line); }
.meta, figcaption span, .note { color: var(--muted); font-size: 13px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 10px; margin: 16px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.card dt { font-size: 13px; color: var(--muted); }
.card dd { margin: 2px 0 0; font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.card dd small { font-size: 13px; font-weight: 400; color: var(--muted); }
figure { margin: 14px 0 22px; }
figcaption { margin-bottom: 6px; }
figure svg { width: 100%; height: auto; display: block; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--panel); }
td.n, th.n { text-align: right; }
details { margin-top: 6px; }
summary { cursor: pointer; color: var(--muted); font-size: 13px; }
code { font-size: 12px; word-break: break-all; }
.empty { background: var(--panel); padding: 10px 12px; border-radius: 6px; color: var(--muted); }
footer { margin-top: 40px; border-top: 1px solid var(--line); padding-top: 10px; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; }
  figure, .cards, tr { break-inside: avoid; }
  details { display: none; }
  .card { border-color: #999; }
  a { color: inherit; text-decoration: none; }
}
"""


def render(data: ReportData, charts: dict[str, Chart]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>media-import report — {escape(data.state_dir)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<header><h1>Media import report</h1>",
        f'<p class="meta">State directory <code>{escape(data.state_dir)}</code> · made {when(data.generated_at)}</p>',
        "</header><main>",
        _progress(data, charts),
        _section("Events by the day they happened", [_figure(charts, "days", "No event has a recorded day yet.")]),
        _section(
            "Sending",
            [
                _figure(charts, "sending", "No request has been recorded yet."),
                _figure(charts, "quota", "No request has been recorded yet."),
            ],
        ),
        _problems(data, charts),
        _coverage(data, charts),
        _runs(data.runs),
        "</main>",
        _footer(),
        "</body></html>",
    ]
    return "\n".join(parts)


def _section(title: str, body: list[str], anchor: str | None = None) -> str:
    ident = f' id="{anchor}"' if anchor else ""
    return f"<section{ident}><h2>{escape(title)}</h2>\n" + "\n".join(body) + "</section>"


def _cards(items: list[tuple[str, str, str]]) -> str:
    cells = "".join(
        f'<div class="card" data-card="{escape(k)}"><dt>{escape(k)}</dt><dd><span class="v">{escape(v)}</span>'
        f"{f' <small>{escape(s)}</small>' if s else ''}</dd></div>"
        for k, v, s in items
    )
    return f'<dl class="cards">{cells}</dl>'


def _figure(charts: dict[str, Chart], key: str, empty: str) -> str:
    chart = charts.get(key)
    if chart is None:
        return f'<p class="empty" data-empty="{key}">{escape(empty)}</p>'
    head = "".join(f'<th scope="col"{_num(i)}>{escape(h)}</th>' for i, h in enumerate(chart.header))
    body = "".join(
        "<tr>" + "".join(f"<td{_num(i)}>{escape(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in chart.rows
    )
    table = (
        "<details><summary>The numbers</summary>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>"
    )
    return (
        f'<figure class="chart" id="chart-{key}" data-chart="{key}">'
        f"<figcaption><strong>{escape(chart.title)}</strong><br><span>{escape(chart.caption)}</span></figcaption>"
        f"{chart.svg}{table}</figure>"
    )


def _num(i: int) -> str:
    return ' class="n"' if i > 0 else ""


def _progress(data: ReportData, charts: dict[str, Chart]) -> str:
    sent = data.outcomes["sent"]
    days = data.days_left
    if days is None:
        quota_text, quota_note = "unknown", "no daily quota reported by HubSpot yet"
    else:
        quota_text = "none" if data.to_send == 0 else f"{days:,} day{'s' if days != 1 else ''}"
        quota_note = f"{number(data.to_send)} to send at {number(per_day(data.daily or 0, data.reserve or 0))} a day"
        if data.reset_at:
            quota_note += f"; resets {when(data.reset_at)}"
    total = data.known + data.unread
    cards = _cards(
        [
            ("Sent", number(sent), f"of {number(total)} ({percent(sent, total)})"),
            ("Not sent yet", number(data.pending["not_sent"]), "sent by the next run"),
            ("Not read yet", number(data.unread), "estimated, in inputs a stopped run left"),
            ("Failed, will retry", number(data.pending["failed_transient"]), "transient errors"),
            ("Refused by HubSpot", number(data.pending["failed_terminal"]), "--retry-terminal resends"),
            ("Invalid", number(data.outcomes["invalid"]), "never sent; see below"),
            ("Days left at the daily quota", quota_text, quota_note),
        ]
    )
    note = (
        '<p class="note">The chart counts the events read so far; "not read yet" estimates those of the inputs '
        "a stopped run did not reach (from the rows left). Events already sent are never sent twice.</p>"
    )
    return _section("Backfill progress", [cards, _figure(charts, "progress", "No event yet."), note], "progress")


def _problems(data: ReportData, charts: dict[str, Chart]) -> str:
    body = [_figure(charts, "reasons", "No invalid or failed events.")]
    rows = []
    for r in data.reasons:
        for i, s in enumerate(r.samples):
            name = s.source.rsplit("/", 1)[-1]
            head = ""
            if i == 0:
                span = f' rowspan="{len(r.samples)}"' if len(r.samples) > 1 else ""
                head = f"<td{span}>{escape(r.kind)}</td><td{span}>{escape(r.reason)}</td>"
            rows.append(
                f"<tr>{head}<td><code>{escape(name)}:{s.row or '?'}</code></td>"
                f"<td>{escape(s.field or '')}</td><td><code>{escape(s.value or '')}</code></td></tr>"
            )
    if rows:
        body.append(
            '<table><caption class="note">A few samples per reason (file:row, field, value), as in the results file'
            "</caption><thead><tr><th>Kind</th><th>Reason</th><th>Where</th><th>Field</th><th>Value</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    return _section("Failures and invalid events", body, "problems")


def _coverage(data: ReportData, charts: dict[str, Chart]) -> str:
    found = [
        ("Distinct contacts", number(data.contacts), "with events sent"),
        ("Distinct media", number(data.media), "with events sent"),
        ("Contacts not found", number(data.not_found_events), "events left invalid for it"),
    ]
    if data.not_found_emails is not None:
        found.append(("Emails HubSpot does not know", number(data.not_found_emails), "asked again by later runs"))
    body = [_cards(found), _figure(charts, "media", "No event sent yet.")]
    return _section("Coverage", body, "coverage")


def _runs(runs: list[Run]) -> str:
    if not runs:
        return _section("Runs", ['<p class="empty">No run yet.</p>'], "runs")
    rows = []
    for r in runs:
        took = format_duration((r.finished_at or r.started_at) - r.started_at) if r.finished_at else "—"
        code = "— running or killed" if r.exit_code is None else f"{r.exit_code} {EXIT_MEANING.get(r.exit_code, '')}"
        counts = ", ".join(f"{k.replace('_', ' ')} {number(v)}" for k, v in r.counts.items()) or "nothing"
        stopped = f'<br><span class="note">{escape(r.stopped)}</span>' if r.stopped else ""
        rows.append(
            f'<tr><td class="n">{r.id}</td><td>{when(r.started_at)}</td><td class="n">{took}</td>'
            f"<td>{escape(code)}</td><td>{escape(counts)}{stopped}</td><td><code>{escape(r.command[:120])}</code></td></tr>"
        )
    table = (
        '<table id="runs-table"><thead><tr><th class="n">#</th><th>Started</th><th class="n">Took</th>'
        "<th>Exit code</th><th>Events</th><th>Command</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    return _section("Runs", [table], "runs")


def _footer() -> str:
    return (
        '<footer class="note">Made by <code>media-import report</code>. This page loads nothing and runs no script. '
        "It holds counts, input file names, row numbers and a few sample values per reason (the same values the "
        "results file holds); contacts are counted through a hash, and no token or contact id of a sent event is "
        "in it.</footer>"
    )
