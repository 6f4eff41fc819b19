"""How every ``medbench`` command fails: one line on standard error and an exit status.

=====  ==============================================================================
 2     usage error: a bad option or value, an unknown name (protocol, parameter, ...), a
       missing, unreadable or malformed input file, a bad TOML, an output that cannot be
       written, a run past the size budget
 1     a check the command exists to report failed (``verify``, ``store check``, a sweep
       with failed runs), or an internal error (a bug: ``--debug`` shows the traceback)
 130   interrupted (Ctrl-C)
=====  ==============================================================================

:class:`Parser` is the ``argparse`` parser of every command: its errors are one line (``medbench
sweep: error: argument --seeds: ...``) instead of the usage block. :func:`report` maps an
exception to its line and status; commands raise :class:`UsageError` for what they check
themselves.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A command was asked something it cannot do (exit status 2); the message is one line."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError` (one line, status 2)."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage block and exiting."""
        raise UsageError(f"{message} (see {self.prog} --help)")


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``[low, high]`` (one-line error otherwise)."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {span}, not {value}")
        return value

    convert.__name__ = "integer"
    return convert


seed = int_at_least(0)
"""An argparse ``type`` for a seed: a non-negative integer."""


def input_file(path: str, what: str = "file") -> Path:
    """``path`` as an existing, non-empty regular file, else a :class:`UsageError`."""
    p = Path(path)
    if not p.exists():
        raise UsageError(f"no {what} {path!r}")
    if p.is_dir():
        raise UsageError(f"{path} is a folder; expected a {what}")
    if p.stat().st_size == 0:
        raise UsageError(f"{path} is empty; expected a {what}")
    return p


def output_file(path: str) -> Path:
    """``path`` as a file that can be written (its folder exists), else a UsageError."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{path} is a folder; expected a file name")
    if not p.parent.is_dir():
        raise UsageError(f"no folder {str(p.parent)!r} to write {p.name} in")
    return p


def output_folder(path: str) -> Path:
    """``path`` as a folder that exists or can be made (its parent exists), else a UsageError."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{path} is a file; expected a folder")
    anc = p
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise UsageError(f"cannot make folder {path}: {anc} is a file")
    return p


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:600]


def describe(exc: BaseException) -> tuple[int, str]:
    """The exit status and one-line message of ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED, "interrupted"
    if isinstance(exc, UsageError):
        return EXIT_USAGE, str(exc)
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        return EXIT_USAGE, f"{what}{where}"
    if isinstance(exc, tomllib.TOMLDecodeError):
        return EXIT_USAGE, f"bad TOML: {exc}"
    if isinstance(exc, json.JSONDecodeError):
        return EXIT_USAGE, f"bad JSON: {exc}"
    if isinstance(exc, UnicodeDecodeError):
        return EXIT_USAGE, f"not a text file ({exc.reason} at byte {exc.start})"
    if isinstance(exc, sqlite3.DatabaseError):
        return EXIT_USAGE, f"not a readable SQLite database: {exc}"
    if isinstance(exc, ValidationError):
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        return EXIT_USAGE, f"{loc}: {err.get('msg')}" if loc else str(err.get("msg"))
    if isinstance(exc, ValueError) or _is_input_error(exc):
        # ExperimentError, FaultSpecError, TopologyError, CostProfileError, ... are ValueErrors
        return EXIT_USAGE, str(exc) or type(exc).__name__
    if isinstance(exc, MemoryError):
        return EXIT_FAILED, "out of memory (estimate first: medbench sweep checks the size)"
    return EXIT_FAILED, (
        f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    )


def _is_input_error(exc: BaseException) -> bool:
    """Errors the domain packages raise on bad input (store, ledger), by their base class."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"StoreError", "LedgerError", "DecodeError"})


def report(exc: BaseException, command: str = "") -> int:
    """Print ``exc`` as one line on standard error; return its exit status."""
    status, message = describe(exc)
    prog = f"medbench {command}".strip() if command else "medbench"
    print(f"{prog}: error: {_first_line(message)}", file=sys.stderr)
    return status


__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "Parser",
    "UsageError",
    "describe",
    "input_file",
    "int_at_least",
    "output_file",
    "output_folder",
    "report",
    "seed",
]
