"""What several test packages share: the results file, its summary and the outcome of a run; the
sample generator; a loopback proxy in front of the simulator."""

from __future__ import annotations

import csv
import importlib.util
import json
import threading
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from importer.simulator import Simulator

REPO = Path(__file__).resolve().parent.parent


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


@cache
def generator() -> ModuleType:
    """sample_data/generate.py, imported from its path."""
    spec = importlib.util.spec_from_file_location("sample_generate", REPO / "sample_data" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
                if reply is None:
                    reply = proxy._forward(self.path, raw, dict(self.headers.items()))
                status, body, headers = reply
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _pass_on(self) -> None:  # media object listings and updates go through untouched
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, body, headers = proxy._forward(self.path, raw, dict(self.headers.items()), self.command)
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
