"""Numbers for people: three significant digits without exponents, durations and sizes in the
unit that reads best (``2.02 s``, not ``2.02e+03 ms``). Used by the report's tables, its prose
and the figures' tick labels."""

from __future__ import annotations


def number(value: float) -> str:
    """Three significant digits without an exponent (``2020``, ``5.59``, ``0.0123``)."""
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1000:
        return f"{value:,.0f}"
    if a >= 100:
        return f"{value:.0f}"
    if a >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    if a >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    if a >= 0.001:
        return f"{value:.3g}"
    return f"{value:.1e}"


def duration(ms: float) -> str:
    """A duration given in milliseconds, in the unit that reads best (``2.02 s``, ``5.6 ms``)."""
    a = abs(ms)
    if a >= 3_600_000:
        return f"{number(ms / 3_600_000)} h"
    if a >= 60_000:
        return f"{number(ms / 60_000)} min"
    if a >= 1000:
        return f"{number(ms / 1000)} s"
    if a == 0:
        return "0"
    if a >= 1:
        return f"{number(ms)} ms"
    return f"{number(ms * 1000)} µs"


def size(kib: float) -> str:
    """A size given in KiB, in the unit that reads best (``740 B``, ``5.4 KiB``, ``1.2 MiB``)."""
    a = abs(kib)
    if a >= 1024 * 1024:
        return f"{number(kib / 1024 / 1024)} GiB"
    if a >= 1024:
        return f"{number(kib / 1024)} MiB"
    if a >= 1:
        return f"{number(kib)} KiB"
    return f"{number(kib * 1024)} B"


def with_unit(value: float, unit: str) -> str:
    """``value`` in ``unit`` (``ms``, ``s``, ``KiB``, ``B``) as read by a person."""
    if unit == "ms":
        return duration(value)
    if unit == "s":
        return duration(value * 1000)
    if unit == "KiB":
        return size(value)
    if unit == "B":
        return size(value / 1024)
    return f"{number(value)} {unit}"


__all__ = ["duration", "number", "size", "with_unit"]
