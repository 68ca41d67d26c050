"""The command line: parse options, call one library function, map its errors to messages and exit codes.

Nothing here decides how a run goes; everything the CLI does is callable from Python.
"""

from importer.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
