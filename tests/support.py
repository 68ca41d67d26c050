"""What several test packages share: ``media-import`` in-process (``Cli``), the results file, its
summary and the outcome of a run; exact epoch milliseconds; the exactly-once assertion; the sample
generator; a loopback proxy in front of the simulator."""

from __future__ import annotations

import csv
import importlib.util
import json
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import httpx
import pytest

from importer.cli import main
from importer.simulator import Simulator

REPO = Path(__file__).resolve().parent.parent
GENERIC_MAPPING = REPO / "mappings" / "generic.yaml"
ENV_NAMES = ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Key = tuple[str, str]


def ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time (``Z`` or an offset), computed without floats."""
    return (datetime.fromisoformat(text.replace("Z", "+00:00")) - _EPOCH) // timedelta(milliseconds=1)


def key_of(event: dict[str, Any]) -> Key:
    return (str(event["sessionId"]), str(event["state"]))


def accepted(sim: Simulator) -> Counter[Key]:
    """How many times the simulator accepted each (sessionId, state)."""
    return Counter(key_of(record["event"]) for record in sim.client.events())


def assert_exactly_once(counts: Counter[Key], expected: set[Key]) -> None:
    extra = set(counts) - expected
    missing = expected - set(counts)
    twice = {k: n for k, n in counts.items() if n > 1}
    assert not missing, f"{len(missing)} events never arrived, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected events arrived, e.g. {sorted(extra)[:3]}"
    assert not twice, f"{len(twice)} events arrived more than once, e.g. {sorted(twice.items())[:3]}"


def results_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def summary_of(results: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(f"{results}.summary.json").read_text(encoding="utf-8"))
    return data


@dataclass
class Ran:
    """One ``media-import`` invocation: exit code, output, and where its results went."""

    code: int
    out: str
    err: str
    results: Path

    @property
    def summary(self) -> dict[str, Any]:
        return summary_of(self.results)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.summary["counts"]
        return counts

    @property
    def rows(self) -> list[dict[str, str]]:
        return results_rows(self.results)


class CliResult(NamedTuple):
    """What one in-process ``media-import`` call gave: unpacks as (code, out, err)."""

    code: int
    out: str
    err: str


class Cli:
    """``media-import`` in this process, with one mapping (the generic one unless ``use_mapping``), one
    state directory, and the HubSpot variables cleared then set per call with ``env`` / ``token``."""

    def __init__(self, tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.mapping = GENERIC_MAPPING
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self._n = 0
        for name in ENV_NAMES:
            monkeypatch.delenv(name, raising=False)

    def use_mapping(self, text: str) -> Path:
        self.mapping = self.tmp / "mapping.yaml"
        self.mapping.write_text(text, encoding="utf-8")
        return self.mapping

    def env(self, **values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, value)

    def token(self, value: str) -> None:
        self._monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", value)

    def __call__(self, *args: object, check: bool = True) -> CliResult:
        """Exit code, stdout, stderr; with ``check``, neither a traceback nor an internal error."""
        self._capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = self._capsys.readouterr()
        if check:
            assert "Traceback" not in out + err, err
            assert "internal error" not in out + err, err
        return CliResult(code, out, err)

    def run(
        self,
        base_url: str,
        *inputs: Path,
        extra: Sequence[object] = (),
        rate: str = "none",
        results: Path | None = None,
        check: bool = True,
    ) -> Ran:
        """``run INPUTS -m MAPPING`` into a fresh results file (``results-N.csv``) and the state directory."""
        self._n += 1
        results = results or self.tmp / f"results-{self._n}.csv"
        code, out, err = self(
            "run", *inputs, "-m", self.mapping, "--results", results, "--state-dir", self.state,
            "--base-url", base_url, "--rate", rate, "-q", *extra, check=check,
        )  # fmt: skip
        return Ran(code, out, err, results)

    def media_sync(self, base_url: str, *inputs: Path) -> None:
        """``media sync`` of the inputs' media objects: tests whose point is the events' faults create the
        media first, on a fault-free simulator, as a first backfill would."""
        code, out, err = self("media", "sync", *inputs, "-m", self.mapping, "--state-dir", self.state,
                              "--base-url", base_url, "--rate", "none", "-q")  # fmt: skip
        assert code in (0, 1) and "failed 0" in out, out + err  # 1: some media are invalid (their rows are)

    def check_json(self, *inputs: Path, state_dir: Path | None = None) -> tuple[int, dict[str, Any]]:
        code, out, _ = self(
            "check", *inputs, "-m", self.mapping, "--state-dir", state_dir or self.state, "--json", "-q"
        )
        report: dict[str, Any] = json.loads(out[out.index("{") :])
        return code, report


@cache
def generator() -> ModuleType:
    """sample_data/generate.py, imported from its path."""
    spec = importlib.util.spec_from_file_location("sample_generate", REPO / "sample_data" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed_sample_media(sim: Simulator) -> None:
    """Make every media of the samples (media_bridge_id and external_id) an object of the account, for tests
    about the events alone."""
    from importer.simulator.media import sample_external_objects, sample_objects

    known = sim.client.media()["objects"]
    ids = {o["id"] for o in known}
    externals = {o.get("externalId") for o in known}
    sim.client.seed_media([o for o in sample_objects() if o["id"] not in ids]
                          + [o for o in sample_external_objects() if o["externalId"] not in externals])  # fmt: skip


def media_requests(sim: Simulator) -> int:
    """Requests the simulator answered on its media object endpoints (listings, creates, updates)."""
    return sum(sim.client.media()["requests"].values())


Reply = tuple[int, bytes, dict[str, str]]


class SimulatorProxy:
    """A loopback HTTP proxy in front of the simulator: each POST goes to ``intercept`` first, and
    is passed on unchanged unless it answers itself. Subclasses record or refuse requests."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._http = httpx.Client(base_url=sim.url, timeout=10.0)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with proxy._lock:
                    reply = proxy.intercept(self.path, raw)
                self._answer(reply if reply is not None else proxy._forward(self.path, raw, dict(self.headers.items())))

            def _pass_on(self) -> None:  # media object listings and updates go through untouched
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._answer(proxy._forward(self.path, raw, dict(self.headers.items()), self.command))

            def _answer(self, reply: Reply) -> None:
                status, body, headers = reply
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PATCH = _pass_on

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def intercept(self, path: str, raw: bytes) -> Reply | None:
        """Called under the proxy's lock for each request: an answer of its own, or None to pass it on."""
        return None

    def _forward(self, path: str, raw: bytes, headers: dict[str, str], method: str = "POST") -> Reply:
        sent = {k: v for k, v in headers.items() if k.lower() in ("authorization", "content-type")}
        answer = self._http.request(method, path, content=raw or None, headers=sent)
        kept = {"Content-Type": answer.headers.get("content-type", "application/json")}
        for k, v in answer.headers.items():
            if k.lower().startswith("x-hubspot") or k.lower() == "retry-after":
                kept[k] = v
        return answer.status_code, answer.content, kept

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()
