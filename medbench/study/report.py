"""A report folder: ``README.md`` with the tables, one CSV per table, PNG plots, ``metadata.json``.

Theory of operation
-------------------
A :class:`Report` collects sections in order: markdown text, tables (a list of flat row dicts,
written as ``<name>.csv`` and shown in the markdown as a pipe table), line plots (drawn with
matplotlib's Agg backend into ``<name>.png`` and linked from the markdown) and figures a caller
draws itself (:meth:`Report.image`). :meth:`Report.write`
creates the folder and writes everything, plus ``metadata.json`` (the run metadata of
:func:`medbench.experiments.metadata` and whatever the caller adds). Nothing here depends on the
host except the metadata, so the same rows give the same CSV and markdown bytes.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def fmt(value: Any) -> str:
    """A cell for a markdown table: floats with 3 significant digits, NaN as ``-``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A pipe table of ``rows`` (columns: ``columns`` or the union of keys, first seen first)."""
    cols = list(columns) if columns is not None else _columns(rows)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in rows:
        out.append("| " + " | ".join(fmt(row.get(c, "")) for c in cols) + " |")
    return "\n".join(out) + "\n"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


@dataclass(slots=True)
class Plot:
    """Lines of ``y`` against ``x``, one per value of ``series``, from flat rows."""

    name: str
    rows: list[dict[str, Any]]
    x: str
    y: str
    series: str
    title: str
    logy: bool = False


@dataclass(slots=True)
class Report:
    """An ordered report (see the module docstring)."""

    title: str
    sections: list[tuple[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def text(self, markdown: str) -> None:
        """Add a markdown paragraph."""
        self.sections.append(("text", markdown))

    def table(
        self,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        show: bool = True,
    ) -> None:
        """Add a table written to ``name.csv`` (shown in the markdown unless ``show`` is false)."""
        self.sections.append(("table", (name, [dict(r) for r in rows], columns, show)))

    def plot(self, plot: Plot) -> None:
        """Add a line plot written to ``plot.name + '.png'``."""
        self.sections.append(("plot", plot))

    def image(self, name: str, title: str, render: Callable[[Path], None]) -> None:
        """Add a figure that ``render(path)`` draws into ``name + '.png'`` (any matplotlib
        figure: error bars, bands, several axes)."""
        self.sections.append(("image", (name, title, render)))

    def write(self, folder: str | Path) -> Path:
        """Write the folder; returns the path of ``README.md``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        md = [f"# {self.title}\n"]
        for kind, item in self.sections:
            if kind == "text":
                md.append(str(item).rstrip() + "\n")
            elif kind == "table":
                name, rows, columns, show = item
                write_csv(out / f"{name}.csv", rows, columns)
                if show:
                    md.append(markdown_table(rows, columns))
                md.append(f"Data: [`{name}.csv`]({name}.csv)\n")
            elif kind == "image":
                name, title, render = item
                render(out / f"{name}.png")
                md.append(f"![{title}]({name}.png)\n")
            else:
                draw(item, out / f"{item.name}.png")
                md.append(f"![{item.title}]({item.name}.png)\n")
        readme = out / "README.md"
        readme.write_text("\n".join(md))
        (out / "metadata.json").write_text(
            json.dumps(self.meta, indent=2, sort_keys=True, default=str) + "\n"
        )
        return readme


def write_csv(
    path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
) -> None:
    """``rows`` as CSV with a header (missing cells empty, extra keys kept)."""
    cols = list(columns) if columns is not None else _columns(rows)
    for c in _columns(rows):
        if c not in cols:
            cols.append(c)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in cols})


def draw(plot: Plot, path: Path) -> None:
    """Render ``plot`` to ``path`` with matplotlib's Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in plot.rows:
        x, y = row.get(plot.x), row.get(plot.y)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not math.isnan(y):
            groups.setdefault(str(row.get(plot.series)), []).append((float(x), float(y)))
    for label, pts in groups.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    if plot.logy and any(p[1] > 0 for pts in groups.values() for p in pts):
        ax.set_yscale("log")
    ax.set_xlabel(plot.x)
    ax.set_ylabel(plot.y)
    ax.set_title(plot.title)
    if groups:
        ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    # Fixed metadata so the bytes of a PNG depend only on the data.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


__all__ = ["Plot", "Report", "draw", "fmt", "markdown_table", "write_csv"]
