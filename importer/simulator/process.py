"""The simulator in a child process: for a client that must not share the GIL with the server
(throughput measurements) or a test that kills one side hard."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from importer.simulator.command import config_to_args
from importer.simulator.config import SimulatorConfig

_URL = re.compile(r"listening on (http://\S+)")


class SimulatorProcess:
    """``python -m importer.simulator`` on a free port; ``.url`` once started, ``stop`` sends SIGINT."""

    def __init__(self, config: SimulatorConfig | None = None, *, start_timeout_s: float = 15.0) -> None:
        self.config = (config or SimulatorConfig()).check()
        self._timeout = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: nobody has to keep draining it for the child to keep running.
        self._log = tempfile.NamedTemporaryFile(prefix="media-bridge-sim-", suffix=".log", delete=False)  # noqa: SIM115
        self.url = ""

    @property
    def token(self) -> str:
        return self.config.required_token()

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("not started")
        return self._proc.pid

    def output(self) -> str:
        with open(self._log.name, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def start(self) -> SimulatorProcess:
        cmd = [sys.executable, "-m", "importer.simulator", *config_to_args(self.config)]
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            match = _URL.search(self.output())
            if match:
                self.url = match.group(1)
                return self
            if self._proc.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the simulator process did not start:\n{self.output()}")

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGINT and wait (SIGKILL if it hangs); returns the exit code."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._log.close()
        if os.path.exists(self._log.name):
            os.unlink(self._log.name)
        return None if proc is None else proc.returncode

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
