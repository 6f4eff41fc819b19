"""Pick the native core or its pure-Python reference twin, one group at a time.

Each accelerated group (``hashing``, ``merkle``, ``quorum``) exists twice with the same API, the
same docstrings and the same bytes: ``medbench._native.<group>`` (Cython, built from ``_native/``)
and ``medbench.reference.<group>``. The public modules ``medbench.hashing``, ``medbench.merkle`` and
``medbench.quorum`` re-export whichever :func:`load` returns.

``MEDBENCH_PURE_PYTHON=1`` forces the reference everywhere; a missing or broken extension falls
back to the reference and the reason is kept for :func:`describe`.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Any

GROUPS: tuple[str, ...] = ("hashing", "merkle", "quorum")
PURE_ENV = "MEDBENCH_PURE_PYTHON"

_loaded: dict[str, ModuleType] = {}
_errors: dict[str, str] = {}


def pure_python_forced() -> bool:
    """True when ``MEDBENCH_PURE_PYTHON`` asks for the pure-Python reference."""
    return os.environ.get(PURE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def reference(group: str) -> ModuleType:
    """The pure-Python reference module of ``group``."""
    _check_group(group)
    return importlib.import_module(f"medbench.reference.{group}")


def native(group: str) -> ModuleType | None:
    """The native module of ``group``, or ``None`` if it is not built or fails to import."""
    _check_group(group)
    try:
        return importlib.import_module(f"medbench._native.{group}")
    except ImportError as exc:
        _errors[group] = f"{type(exc).__name__}: {exc}"
        return None


def load(group: str) -> ModuleType:
    """The module that serves ``group``: native unless forced pure or unavailable."""
    if group in _loaded:
        return _loaded[group]
    module = None if pure_python_forced() else native(group)
    if module is None:
        module = reference(group)
    _loaded[group] = module
    return module


def native_loaded() -> bool:
    """True when every group is served by the native core."""
    return all(load(g).__name__.startswith("medbench._native.") for g in GROUPS)


def describe() -> dict[str, Any]:
    """Which backend serves each group, and why a native module did not load."""
    info: dict[str, Any] = {"pure_python_forced": pure_python_forced(), "groups": {}}
    for group in GROUPS:
        module = load(group)
        kind = "native" if module.__name__.startswith("medbench._native.") else "reference"
        entry: dict[str, Any] = {"backend": kind}
        detail = getattr(module, "implementation", None)
        if callable(detail):
            entry["implementation"] = detail()
        if kind == "reference" and group in _errors:
            entry["native_error"] = _errors[group]
        info["groups"][group] = entry
    info["native_loaded"] = native_loaded()
    return info


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ValueError(f"unknown backend group {group!r}; expected one of {GROUPS}")


def main(argv: list[str] | None = None) -> int:
    """``python -m medbench.backend [--require-native]``: print the backends, maybe insist."""
    args = sys.argv[1:] if argv is None else argv
    info = describe()
    for group, entry in info["groups"].items():
        extra = entry.get("implementation") or entry.get("native_error") or ""
        print(f"{group:8s} {entry['backend']:9s} {extra}")
    if "--require-native" in args and not info["native_loaded"]:
        print("native core did not load", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
