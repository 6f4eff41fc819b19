"""A run's message trace, recorded copy by copy, and exported as Chrome trace events (Perfetto).

Theory of operation
-------------------
:func:`record` attaches a :class:`TraceRecorder` to a :class:`~medbench.sim.engine.Simulator`
before (or between) its runs: it wraps the simulator's network hooks on the instance
(``_route``, where a Send leaves its node, and ``_deliver`` / ``_deliver_hosts``, where a batch of
copies arrives, with one server per node or on shared hosts), so the engine's
hot path is untouched for every run that records nothing. Each copy that reaches a live node over
an open link becomes one :class:`Delivery`: when it was sent and when it arrived (virtual
microseconds: transmission, latency, jitter and link FIFO included), its source and destination,
its kind and size, and the message object itself (for callers that filter by content).

**Format: Chrome trace events** (the JSON that Perfetto, ``ui.perfetto.dev``, and
``chrome://tracing`` open; chosen over ShiViz logs because Perfetto shows time to scale, which is
what a latency question needs, and reads the file without any conversion). :func:`chrome_trace`
gives one process ("medbench simulation") with one thread per node, named by ``names``; each copy
is a short slice on the sender at its send time (``send KIND``) and on the receiver at its
arrival (``recv KIND``), joined by a flow arrow (``ph`` ``s``/``f``, one id per copy), with the
size, source and destination in ``args``. Timestamps are the virtual microseconds themselves
(Chrome's ``ts`` unit), so Perfetto's time axis is the simulation's clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medbench.sim.engine import Simulator

SLICE_US = 1
"""Width of the send and receive slices (virtual us): Perfetto binds a flow arrow to a slice."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message copy that reached a live node."""

    sent_us: int
    arrived_us: int
    src: int
    dst: int
    kind: str
    size: int
    msg: Any = field(compare=False, repr=False)


@dataclass(slots=True)
class TraceRecorder:
    """The copies delivered since :func:`record` attached it (see the module docstring)."""

    deliveries: list[Delivery] = field(default_factory=list)
    _sent: dict[tuple[int, int], int] = field(default_factory=dict)

    def since(self, start: int) -> list[Delivery]:
        """Copies from index ``start`` on (``len(deliveries)`` earlier marks a point in time)."""
        return self.deliveries[start:]


def record(sim: Simulator) -> TraceRecorder:
    """Attach a recorder to ``sim``: every later delivered copy is appended to it."""
    rec = TraceRecorder()
    route: Callable[..., None] = sim._route

    def traced_route(
        src: int, depart: int, msg: Any, kind: str, size: int, dsts: Sequence[int]
    ) -> None:
        rec._sent[(id(msg), src)] = depart
        route(src, depart, msg, kind, size, dsts)

    def traced(deliver: Callable[[int, Any], None]) -> Callable[[int, Any], None]:
        def traced_deliver(t: int, data: tuple[int, Any, str, int, list[int]]) -> None:
            src, msg, kind, size, dsts = data
            blocked = sim._blocked[src]
            sent = rec._sent.get((id(msg), src), t)
            for dst in dsts:
                if sim.alive(dst) and dst not in blocked:
                    rec.deliveries.append(Delivery(sent, t, src, dst, str(kind), size, msg))
            deliver(t, data)

        return traced_deliver

    sim._route = traced_route  # type: ignore[method-assign]
    # Both delivery paths: one server per node, or nodes sharing a host's cores.
    for name in ("_deliver", "_deliver_hosts"):
        if hasattr(sim, name):
            setattr(sim, name, traced(getattr(sim, name)))
    return rec


def chrome_trace(
    deliveries: Sequence[Delivery], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Chrome trace events of ``deliveries`` (module docstring); ``names[i]`` names node i."""
    pid = 1
    nodes = sorted({d.src for d in deliveries} | {d.dst for d in deliveries})
    events: list[dict[str, Any]] = [
        {"name": "process_name", "ph": "M", "pid": pid, "args": {"name": "medbench simulation"}}
    ]
    for i in nodes:
        label = names[i] if names is not None and i < len(names) else f"node {i}"
        events.append(
            {"name": "thread_name", "ph": "M", "pid": pid, "tid": i, "args": {"name": label}}
        )
        events.append(
            {
                "name": "thread_sort_index",
                "ph": "M",
                "pid": pid,
                "tid": i,
                "args": {"sort_index": i},
            }
        )
    for k, d in enumerate(deliveries):
        args = {"src": d.src, "dst": d.dst, "bytes": d.size, "latency_us": d.arrived_us - d.sent_us}
        events.append(
            {"name": f"send {d.kind}", "cat": "message", "ph": "X", "ts": d.sent_us,
             "dur": SLICE_US, "pid": pid, "tid": d.src, "args": args}
        )  # fmt: skip
        events.append(
            {"name": d.kind, "cat": "message", "ph": "s", "id": k, "ts": d.sent_us,
             "pid": pid, "tid": d.src}
        )  # fmt: skip
        events.append(
            {"name": f"recv {d.kind}", "cat": "message", "ph": "X", "ts": d.arrived_us,
             "dur": SLICE_US, "pid": pid, "tid": d.dst, "args": args}
        )  # fmt: skip
        events.append(
            {"name": d.kind, "cat": "message", "ph": "f", "bp": "e", "id": k,
             "ts": d.arrived_us, "pid": pid, "tid": d.dst}
        )  # fmt: skip
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def write_chrome_trace(
    path: str | Path, deliveries: Sequence[Delivery], names: Sequence[str] | None = None
) -> Path:
    """Write :func:`chrome_trace` as JSON to ``path``; returns the path."""
    p = Path(path)
    p.write_text(json.dumps(chrome_trace(deliveries, names), separators=(",", ":")) + "\n")
    return p


__all__ = ["SLICE_US", "Delivery", "TraceRecorder", "chrome_trace", "record", "write_chrome_trace"]
