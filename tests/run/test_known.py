"""``Known``: what the journal holds that keeps an event from being sent, the one rule ``run`` admits
by and ``run --dry-run`` plans by."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from importer.run.admission import Known
from importer.run.options import RunOptions
from importer.state.journal import Journal, Record


def _options(**values: object) -> RunOptions:
    options = RunOptions(base_url="https://api.hubapi.com")
    for name, value in values.items():
        setattr(options, name, value)
    return options


def _journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / "state")
    journal.start_run("run", None)
    for k, status in ((1, "sent"), (2, "failed"), (3, "possibly_sent"), (4, "not_sent")):
        journal.record(Record(k, k, status, "a.csv", "", k, "STARTED", b'{"k": %d}' % k))
    journal.record(Record(5, 5, "failed", "a.csv", "", 5, "STARTED", b"{}", transient=True))
    return journal


def test_each_event_is_sent_refused_held_or_to_send_and_the_options_decide(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    keys = np.array([1, 2, 3, 4, 5, 6], dtype=np.int64)
    try:
        known = Known.of(journal, keys, keys, _options())
        assert known.sent.tolist() == [True, False, False, False, False, False]
        assert known.refused.tolist() == [False, True, False, False, False, False]  # a 4xx, not a transient failure
        assert known.held.tolist() == [False, False, True, False, False, False]
        assert known.to_send.tolist() == [False, False, False, True, True, True]
        assert known.sent_with[0] != 0
        again = Known.of(journal, keys, keys, _options(retry_terminal=True, on_timeout="retry"))
        assert again.to_send.tolist() == [False, True, True, True, True, True]
        forced = Known.of(journal, keys, keys, _options(force=True))
        assert forced.to_send.all()
    finally:
        journal.close()


def test_a_sent_event_whose_journal_kept_no_payload_hash_is_still_sent(tmp_path: Path) -> None:
    journal = _journal(tmp_path)
    try:
        journal.db.execute("UPDATE events SET payload_hash = NULL WHERE k1 = 1")
        keys = np.array([1], dtype=np.int64)
        known = Known.of(journal, keys, keys, _options())
    finally:
        journal.close()
    assert known.sent.tolist() == [True] and known.sent_with.tolist() == [0]
    assert not known.to_send.any()
