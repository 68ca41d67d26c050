"""One run per state directory: an exclusive ``flock`` on ``STATE_DIR/lock``.

The operating system releases the lock when its process ends, however it ends
(a crash, ``kill -9``), so there is no stale lock to detect, no pid that can be
reused by another process and no race between two runs taking over a stale
one. The file also holds the owner's pid, for the message a second run prints;
the owner empties it when it releases the lock, so a pid still in the file of
a free lock tells of a run that ended without finishing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from importer.errors import ConfigError, LockedError

log = logging.getLogger("media_import")


class StateLock:
    """Taken once per run (``with StateLock(dir):``), released when the run ends or its process dies."""

    def __init__(self, state_dir: str | Path) -> None:
        self.path = Path(state_dir) / "lock"
        self.took_over_from: int | None = None
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        if self._fd is not None:
            raise RuntimeError("the state lock is taken once per run")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the lock file {self.path} ({exc.strerror or exc})",
                hint="check that the state directory is writable",
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _pid_in(fd)
            os.close(fd)
            who = f" (pid {owner})" if owner else ""
            raise LockedError(
                f"another media-import run{who} is using the state directory {self.path.parent}",
                hint="wait for it to finish (the lock is released when its process ends)",
            ) from None
        self.took_over_from = _pid_in(fd)
        if self.took_over_from is not None:
            log.warning(
                "took over a stale lock of pid %s in %s (that run ended without finishing: killed?)",
                self.took_over_from,
                self.path.parent,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):  # the lock is released all the same
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) or None
    except (OSError, ValueError):
        return None
