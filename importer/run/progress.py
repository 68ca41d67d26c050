"""Progress reporting behind one small interface; tqdm lives only in ``TqdmProgress``."""

from __future__ import annotations

import sys
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, description: str, total: int | None = None, unit: str = "rows") -> None: ...
    def update(self, n: int, **postfix: Any) -> None: ...
    def describe(self, description: str) -> None: ...
    def close(self) -> None: ...


class NullProgress:
    """Progress that shows nothing: --quiet, tests, and stderr that is not a terminal."""

    def start(self, description: str, total: int | None = None, unit: str = "rows") -> None:
        pass

    def update(self, n: int, **postfix: Any) -> None:
        pass

    def describe(self, description: str) -> None:
        pass

    def close(self) -> None:
        pass


class TqdmProgress:
    """A tqdm bar on stderr."""

    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, description: str, total: int | None = None, unit: str = "rows") -> None:
        from tqdm import tqdm

        self.close()
        self._bar = tqdm(
            total=total, desc=description, unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True, leave=False
        )

    def update(self, n: int, **postfix: Any) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)

    def describe(self, description: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(description, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(quiet: bool) -> Progress:
    """A tqdm bar when stderr is a terminal and not --quiet, else the null one."""
    if quiet or not sys.stderr.isatty():
        return NullProgress()
    return TqdmProgress()
