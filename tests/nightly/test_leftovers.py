"""Leftovers: events earlier runs could not send are re-driven by the next run, from the journal's
copy, even when their files are unchanged and skipped; terminal 400s only with --retry-terminal."""

from __future__ import annotations

from .conftest import Nights
from .helpers import (
    RejectingProxy,
    append_rows,
    assert_received_once,
    canonical,
    expected,
    manifest,
    query,
    requests_made,
    write,
)


def _pending(night: Nights) -> dict[str, int]:
    rows = query(
        night.state,
        "SELECT status || CASE WHEN status = 'failed' THEN (CASE WHEN transient = 1 THEN '/transient' "
        "ELSE '/terminal' END) ELSE '' END, COUNT(*) FROM events WHERE status != 'sent' GROUP BY 1",
    )
    return {str(k): int(v) for k, v in rows}


def test_transient_failures_are_redriven_next_night_unless_no_retry_failed(night: Nights) -> None:
    a = canonical(20, seed=61, prefix="a")
    b = canonical(15, seed=62, prefix="b")
    write(a, night.inputs / "2026-11-01-a.csv")
    write(b, night.inputs / "2026-11-01-b.csv")
    want = expected(a, b)

    # Night 1: HubSpot answers 5xx to every event (the media objects were created before); one attempt each.
    night.media_sync()
    night.sim.client.reset()
    night.sim.client.configure(error_rate=1.0, seed=1)
    r = night.run("--max-attempts", "1")
    assert r.code == 1
    assert night.summary()["counts"]["failed"] == len(want)
    assert night.sim.client.stats()["accepted_events"] == 0
    assert _pending(night) == {"failed/transient": len(want)}
    # Every event has an outcome, so both files count as imported: the next nights do not read them.
    assert manifest(night.state) == {
        str(night.inputs / "2026-11-01-a.csv"): 1,
        str(night.inputs / "2026-11-01-b.csv"): 1,
    }
    night.sim.client.configure(error_rate=0.0)
    night.sim.client.reset()

    # Night 2 with --no-retry-failed: the leftovers stay where they are; nothing is sent.
    r = night.run("--no-retry-failed")
    assert r.code == 0, r.err
    assert requests_made(night.sim) == 0
    assert night.summary()["leftovers_redriven"] == 0
    assert _pending(night) == {"failed/transient": len(want)}

    # Night 3, no new file, the default: the leftovers are sent, each exactly once, from the journal.
    r = night.run()
    assert r.code == 0, r.err
    assert_received_once(night.sim, want)
    s = night.summary()
    assert s["leftovers_redriven"] == len(want)
    assert s["counts"]["sent"] == len(want)
    assert (s["files_read"], s["files_skipped_unchanged"]) == (0, 2)
    assert f"{len(want)} events left by earlier runs were sent again" in r.out
    assert _pending(night) == {}
    night.sim.client.reset()

    # Night 4: nothing left.
    r = night.run()
    assert r.code == 0, r.err
    assert requests_made(night.sim) == 0
    assert night.summary()["leftovers_redriven"] == 0


def test_a_400_stays_failed_unless_retry_terminal(night: Nights) -> None:
    a = canonical(20, seed=63, prefix="a")
    write(a, night.inputs / "2026-11-01-a.csv")
    want = expected(a)
    refused = {("a-3", "STARTED"), ("a-7", "STARTED")}
    assert refused <= want
    proxy = RejectingProxy(night.sim, refused)
    try:
        # Night 1: two events refused with a 400 (final: not retried), the rest sent.
        r = night.run(base_url=proxy.url)
        assert r.code == 1
        assert_received_once(night.sim, want - refused)
        assert sum(proxy.rejected.values()) == len(refused)  # one attempt each
        assert _pending(night) == {"failed/terminal": len(refused)}
        night.sim.client.reset()

        # Night 2: HubSpot would take them now, but a 400 is not re-driven by default...
        proxy.reject.clear()
        for extra in ((), ("--no-retry-failed",)):
            r = night.run(*extra, base_url=proxy.url)
            assert r.code == 0, r.err
            assert requests_made(night.sim) == 0
            assert _pending(night) == {"failed/terminal": len(refused)}

        # ...only with --retry-terminal, and then exactly once.
        r = night.run("--retry-terminal", base_url=proxy.url)
        assert r.code == 0, r.err
        assert_received_once(night.sim, refused)
        assert night.summary()["leftovers_redriven"] == len(refused)
        assert _pending(night) == {}
        night.sim.client.reset()

        r = night.run("--retry-terminal", base_url=proxy.url)
        assert r.code == 0, r.err
        assert requests_made(night.sim) == 0
    finally:
        proxy.close()


def test_leftovers_of_a_file_that_grew_are_sent_once(night: Nights) -> None:
    """The failed events of a file that grew are both re-read from it and leftovers in the journal."""
    a = canonical(40, seed=64, prefix="a")
    path = write(a, night.inputs / "2026-11-01-a.csv")
    night.sim.client.configure(error_rate=1.0, seed=1)
    assert night.run("--max-attempts", "1").code == 1
    night.sim.client.configure(error_rate=0.0, latency_ms=10)
    night.sim.client.reset()

    more = canonical(5, seed=65, prefix="a-more")
    append_rows(path, more)
    r = night.run()
    assert r.code == 0, r.err
    assert_received_once(night.sim, expected(a, more))
