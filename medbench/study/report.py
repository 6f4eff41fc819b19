"""A report folder: ``README.md``, one CSV per table, PNG figures and ``metadata.json``.

Theory of operation
-------------------
A :class:`Report` collects sections in order: markdown text, tables (a list of flat row dicts,
written as ``<name>.csv`` by :func:`medbench.experiments.write_results`, the kit's one table
writer, with a ``<name>.json`` sidecar that names the table's network, workload and cost profile,
and shown in the markdown through :mod:`tabulate`) and figures (drawn by
:mod:`medbench.study.figures` into ``<name>.png`` and linked from the markdown).
:meth:`Report.write` creates the folder and writes everything, plus ``metadata.json`` (the run
metadata of :func:`medbench.experiments.metadata` and whatever the caller adds). Nothing here
depends on the host except the metadata, so the same rows give the same CSV and markdown bytes.

Numbers are formatted for reading (:func:`fmt`): a column's unit comes from its name
(:data:`UNITS`: ``latency_ms_p50`` is a duration in milliseconds, shown as ``2.02 s`` or
``5.59 ms``; ``storage_kb_per_node`` a size in KiB, shown as ``1.2 MiB``), other numbers with three
significant digits and no exponent. Markdown headers are words (:data:`LABELS`); the CSV keeps the
machine names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tabulate import tabulate

from medbench import experiments as ex
from medbench.study.figures import Figure, Panel, draw
from medbench.study.units import duration, number, size, with_unit

LABELS: dict[str, str] = {
    "system": "system",
    "n": "nodes n",
    "f": "f",
    "seeds": "seeds",
    "live": "live",
    "started": "started",
    "safety": "safe",
    "completed": "completed tx",
    "throughput_tps": "throughput (tx/s)",
    "latency_ms_p50": "median latency",
    "latency_ms_p95": "95th-percentile latency",
    "msgs_per_tx": "messages per tx",
    "bytes_per_tx": "bytes sent per tx",
    "cpu_ms_per_tx": "CPU per tx",
    "hashes_per_tx": "SHA-256 evaluations per tx",
    "storage_kb_per_node": "storage per node",
    "cpu_s_max_node": "busiest node's CPU",
    "crashed": "nodes crashed",
    "tolerated": "crashes tolerated",
    "behaviour": "behaviour",
    "view_changes": "view changes",
    "rejections": "messages refused",
    "commits_undone": "commits undone",
    "safety_reason": "first safety violation",
    "block_mode": "block mode",
    "clients": "closed-loop clients",
    "unblocked_left": "tx left outside blocks",
    "search": "search",
    "reason": "why not live",
    "load": "load",
    "byzantine": "Byzantine behaviour",
    "faults_tolerated": "crashes tolerated",
    "learn_ms_per_tx": "learning CPU per tx",
    "rewards_per_tx": "rewards per tx",
}
"""Markdown header of a column (the CSV keeps the column's own name)."""

UNITS: dict[str, str] = {
    "latency_ms_p50": "ms",
    "latency_ms_p95": "ms",
    "cpu_ms_per_tx": "ms",
    "learn_ms_per_tx": "ms",
    "cpu_s_max_node": "s",
    "storage_kb_per_node": "KiB",
    "bytes_per_tx": "B",
}
"""A column's unit, where its cells are shown with one (durations, sizes)."""


def fmt(value: Any, column: str = "") -> str:
    """A markdown cell: booleans as yes/no, NaN as ``-``, numbers for reading (module doc)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "-"
        unit = UNITS.get(column)
        if unit is not None:
            return with_unit(float(value), unit)
        if isinstance(value, int):
            return f"{value:,}" if abs(value) >= 10_000 else str(value)
        return number(value)
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub pipe table of ``rows`` (columns: ``columns`` or the union of keys, first seen
    first), headers in words (:data:`LABELS`) and cells for reading (:func:`fmt`)."""
    cols = list(columns) if columns is not None else _columns(rows)
    body = [[fmt(row.get(c, ""), c) for c in cols] for row in rows]
    head = [LABELS.get(c, c) for c in cols]
    table: str = tabulate(body, headers=head, tablefmt="github", disable_numparse=True)
    return table + "\n"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


@dataclass(slots=True)
class Report:
    """An ordered report (see the module docstring)."""

    title: str
    sections: list[tuple[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)  # a few lines for the terminal

    def text(self, markdown: str) -> None:
        """Add a markdown paragraph."""
        self.sections.append(("text", markdown))

    def table(
        self,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        show: bool = True,
        caption: str = "",
        context: Mapping[str, Any] | None = None,
    ) -> None:
        """Add a table written to ``name.csv`` (shown in the markdown unless ``show`` is false).

        ``caption`` (markdown) follows the table; ``context`` (network, workload, profile, ...)
        goes to the ``name.json`` sidecar beside the CSV.
        """
        item = (name, [dict(r) for r in rows], columns, show, caption, dict(context or {}))
        self.sections.append(("table", item))

    def figure(self, figure: Figure) -> None:
        """Add a figure written to ``figure.name + '.png'``."""
        self.sections.append(("figure", figure))

    def image(self, name: str, title: str, render: Callable[[Path], None]) -> None:
        """Add a figure that ``render(path)`` draws into ``name + '.png'`` (any matplotlib
        figure: error bars, bands, several axes)."""
        self.sections.append(("image", (name, title, render)))

    def plot(self, panel: Panel, name: str, caption: str = "") -> None:
        """Add a one-panel figure."""
        self.figure(Figure(name, [panel], caption=caption))

    def write(self, folder: str | Path) -> Path:
        """Write the folder; returns the path of ``README.md``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        md = [f"# {self.title}\n"]
        for kind, item in self.sections:
            if kind == "text":
                md.append(str(item).rstrip() + "\n")
            elif kind == "table":
                name, rows, columns, show, caption, context = item
                cols = list(columns) if columns is not None else _columns(rows)
                cols += [c for c in _columns(rows) if c not in cols]
                ordered = [{c: r.get(c, "") for c in cols} for r in rows]
                meta = {"table": name, "caption": caption, **context}
                ex.write_results(ordered, out, fmt="csv", meta=meta, name=name)
                if show:
                    md.append(markdown_table(rows, columns))
                if caption:
                    md.append(caption.rstrip() + "\n")
                md.append(f"Data: [`{name}.csv`]({name}.csv) (how it was run: `{name}.json`)\n")
            elif kind == "image":
                name, title, render = item
                render(out / f"{name}.png")
                md.append(f"![{title}]({name}.png)\n")
            else:
                draw(item, out / f"{item.name}.png")
                alt = item.title or item.panels[0].title
                md.append(f"![{alt}]({item.name}.png)\n")
                if item.caption:
                    md.append(item.caption.rstrip() + "\n")
        readme = out / "README.md"
        readme.write_text("\n".join(md))
        (out / "summary.txt").write_text("\n".join(self.summary) + "\n" if self.summary else "")
        (out / "metadata.json").write_text(
            json.dumps(self.meta, indent=2, sort_keys=True, default=str) + "\n"
        )
        return readme


__all__ = [
    "LABELS",
    "UNITS",
    "Figure",
    "Panel",
    "Report",
    "duration",
    "fmt",
    "markdown_table",
    "number",
    "size",
    "with_unit",
]
