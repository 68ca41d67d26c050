"""Fixtures of the report tests: ``cli`` (``media-import`` in-process) comes from the sender tests."""

from __future__ import annotations

from send.conftest import Cli, cli

__all__ = ["Cli", "cli"]
