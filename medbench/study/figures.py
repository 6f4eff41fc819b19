"""Figures for people: small multiples of several seeds' runs, with their spread.

Theory of operation
-------------------
A :class:`Figure` is one PNG of one or more :class:`Panel` s side by side (small multiples that
share a legend). A panel draws ``y`` against ``x`` from flat rows, one series per value of
``series``. Rows with the same (series, x) are the runs of different seeds: the panel draws their
mean with a marker and their spread (min to max) as an error bar, so a difference smaller than
the spread reads as noise. Series are told apart by colour *and* marker *and* line style (the same
series keeps its style in every panel), and each is shifted a little along x so that equal
values do not hide each other. The legend sits outside the axes (right of the panels), where it
covers no data. Axis labels are words with units; a panel with a ``unit`` (``ms``, ``KiB``) labels
its y ticks with :func:`medbench.study.units.with_unit` (``2 s``, not ``2e+03``).

Rendering uses matplotlib's Agg backend with fixed PNG metadata, so a figure's bytes depend only
on its data.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.study.units import number, with_unit

LEGEND_WRAP = 26
"""Legend labels are wrapped at this many characters."""

NICE_MS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 6e4, 6e5, 3.6e6, 3.6e7)
"""Log-axis ticks of a duration in ms: 1 µs ... 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 10 h."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")


@dataclass(slots=True)
class Panel:
    """One axes: ``y`` against ``x`` per ``series`` from ``rows`` (seeds give the spread)."""

    rows: list[dict[str, Any]]
    x: str
    y: str
    series: str
    title: str
    xlabel: str
    ylabel: str
    logy: bool = False
    unit: str = ""  # y tick labels in this unit ("ms", "s", "KiB"); "" = plain numbers
    hline: tuple[float, str] | None = None  # a reference level and its label
    ylim0: bool = False  # start the y axis at 0


@dataclass(slots=True)
class Figure:
    """Panels side by side in one PNG, one shared legend (see the module docstring)."""

    name: str
    panels: list[Panel]
    title: str = ""
    caption: str = ""  # markdown under the figure in the report
    columns: int = 0  # panels per row (0: all in one row up to 3, then 2 per row)
    series: list[str] = field(default_factory=list)  # style order shared by figures ([]: seen)


def aggregate(
    rows: Sequence[dict[str, Any]], x: str, y: str, series: str
) -> dict[str, list[tuple[float, float, float, float, int]]]:
    """Per series, sorted by x: (x, mean, min, max, runs) of the numeric ``y`` values."""
    groups: dict[str, dict[float, list[float]]] = {}
    for row in rows:
        xv, yv = row.get(x), row.get(y)
        if isinstance(xv, bool) or not isinstance(xv, (int, float)):
            continue
        if isinstance(yv, bool):
            yv = float(yv)
        if not isinstance(yv, (int, float)) or math.isnan(yv):
            continue
        groups.setdefault(str(row.get(series)), {}).setdefault(float(xv), []).append(float(yv))
    out: dict[str, list[tuple[float, float, float, float, int]]] = {}
    for name, by_x in groups.items():
        out[name] = [
            (xv, sum(v) / len(v), min(v), max(v), len(v)) for xv, v in sorted(by_x.items())
        ]
    return out


def _series_order(panels: Sequence[Panel]) -> list[str]:
    seen: dict[str, None] = {}
    for p in panels:
        for row in p.rows:
            seen.setdefault(str(row.get(p.series)), None)
    return list(seen)


def _tick(unit: str) -> Any:
    def label(value: float, _pos: int) -> str:
        return with_unit(value, unit)

    return label


def draw(figure: Figure, path: Path) -> None:
    """Render ``figure`` to ``path`` (PNG) with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = render(figure)
    # Fixed metadata so the bytes of a PNG depend only on the data.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def render(figure: Figure) -> Any:
    """``figure`` as a matplotlib figure on the current backend (a notebook shows it inline)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import (
        FixedLocator,
        FuncFormatter,
        LogLocator,
        MaxNLocator,
        NullFormatter,
    )

    panels = figure.panels
    k = len(panels)
    cols = figure.columns or (k if k <= 3 else 2)
    nrows = math.ceil(k / cols)
    seen = _series_order(panels)
    names = [nm for nm in figure.series if nm in seen] + [
        nm for nm in seen if nm not in figure.series
    ]
    slot = {nm: (figure.series.index(nm) if nm in figure.series else len(figure.series) + i)
            for i, nm in enumerate(names)}  # fmt: skip
    labels = {nm: textwrap.fill(nm, LEGEND_WRAP) for nm in names}
    widest = max((len(line) for nm in names for line in labels[nm].splitlines()), default=0)
    legend_w = 0.6 + 0.075 * widest if len(names) > 1 else 0.0
    fig, axes = plt.subplots(
        nrows,
        cols,
        figsize=(4.3 * cols + legend_w, 3.4 * nrows + (0.5 if figure.title else 0.0)),
        dpi=100,
        squeeze=False,
    )
    style = {
        name: {
            "color": f"C{slot[name] % 10}",
            "marker": MARKERS[slot[name] % len(MARKERS)],
            "linestyle": LINESTYLES[(slot[name] // 10 + slot[name]) % len(LINESTYLES)],
        }
        for name in names
    }
    handles: dict[str, Any] = {}
    for ax, panel in zip(axes.flat, panels, strict=False):
        data = aggregate(panel.rows, panel.x, panel.y, panel.series)
        xs = sorted({p[0] for pts in data.values() for p in pts})
        span = (xs[-1] - xs[0]) if len(xs) > 1 else 1.0
        step = 0.012 * span
        present = [nm for nm in names if nm in data]
        for j, name in enumerate(present):
            pts = data[name]
            shift = (j - (len(present) - 1) / 2) * step
            x = [p[0] + shift for p in pts]
            mean = [p[1] for p in pts]
            lo = [max(p[1] - p[2], 0.0) for p in pts]
            hi = [max(p[3] - p[1], 0.0) for p in pts]
            line = ax.errorbar(
                x,
                mean,
                yerr=[lo, hi],
                capsize=3,
                markersize=5,
                linewidth=1.4,
                elinewidth=1.0,
                label=name,
                **style[name],
            )
            handles.setdefault(name, line)
        if panel.hline is not None:
            level, label = panel.hline
            ax.axhline(level, color="0.35", linewidth=1.0, linestyle=(0, (4, 3)), zorder=0)
            ax.annotate(
                label,
                xy=(0.01, level),
                xycoords=("axes fraction", "data"),
                xytext=(0, 3),
                textcoords="offset points",
                fontsize="small",
                color="0.3",
            )
        values = [v for pts in data.values() for p in pts for v in (p[2], p[3])]
        if panel.logy and any(v > 0 for v in values):
            ax.set_yscale("log")
            nice = NICE_MS if panel.unit == "ms" else ()
            positive = [v for v in values if v > 0]
            ticks = [t for t in nice if min(positive) / 3 <= t <= max(positive) * 3]
            if len(ticks) >= 2:
                ax.yaxis.set_major_locator(FixedLocator(ticks))
            else:
                ax.yaxis.set_major_locator(LogLocator(base=10))
            ax.yaxis.set_minor_formatter(NullFormatter())
        elif panel.ylim0:
            ax.set_ylim(bottom=0)
        if panel.unit:
            ax.yaxis.set_major_formatter(FuncFormatter(_tick(panel.unit)))
        elif panel.logy:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: number(v)))
        if xs and all(float(v).is_integer() for v in xs):
            if len(xs) <= 12:
                ax.set_xticks(xs)
                ax.set_xticklabels([str(int(v)) for v in xs])
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(panel.xlabel)
        ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title, fontsize="medium")
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[k:]:
        ax.set_visible(False)
    if figure.title:
        fig.suptitle(figure.title)
    if len(handles) > 1 or (handles and len(names) == 1 and names[0] not in ("None", "")):
        fig.legend(
            [handles[nm] for nm in names if nm in handles],
            [labels[nm] for nm in names if nm in handles],
            loc="center left",
            bbox_to_anchor=(1.0 - legend_w / fig.get_figwidth(), 0.5),
            fontsize="small",
            frameon=False,
        )
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - legend_w / fig.get_figwidth(), 1.0))
    return fig


__all__ = ["LINESTYLES", "MARKERS", "Figure", "Panel", "aggregate", "draw", "render"]
