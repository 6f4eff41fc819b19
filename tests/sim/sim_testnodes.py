"""Small nodes for simulator tests: a recorder and a scripted sender."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medbench.node import Committed, Note, Ready, Send


@dataclass(frozen=True, slots=True)
class Blob:
    """A message of exactly ``size`` encoded bytes."""

    size: int
    tag: int = 0
    kind: str = "blob"

    def encode(self) -> bytes:
        """``size`` bytes."""
        return b"x" * self.size


@dataclass(frozen=True, slots=True)
class Do:
    """Local instruction: emit these sends / commits / notes / persist records."""

    sends: tuple[Send, ...] = ()
    commits: tuple[Committed, ...] = ()
    completed: tuple[Any, ...] = ()
    notes: tuple[Note, ...] = ()
    persist: tuple[Any, ...] = ()
    costs: tuple[tuple[str, int], ...] = ()
    kind: str = "do"


@dataclass
class Recorder:
    """Logs every input as (sim time, src, msg); executes :class:`Do`; may echo blobs back."""

    node_id: int
    sim: Any = None
    echo: bool = False
    tick_sends: tuple[Send, ...] = ()
    log: list[tuple[int, int, Any]] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    restored: list[Any] | None = None
    pending_costs: dict[str, int] = field(default_factory=dict)

    def take_costs(self) -> dict[str, int]:
        """Counted operations since the last call."""
        out, self.pending_costs = self.pending_costs, {}
        return out

    def step(self, src: int, msg: Any) -> Ready:
        """Record, then act."""
        self.log.append((self.sim.now if self.sim else -1, src, msg))
        ready = Ready()
        if isinstance(msg, Do):
            ready.messages.extend(msg.sends)
            ready.committed.extend(msg.commits)
            ready.completed.extend(msg.completed)
            ready.notes.extend(msg.notes)
            ready.persist.extend(msg.persist)
            for op, count in msg.costs:
                self.pending_costs[op] = self.pending_costs.get(op, 0) + count
        elif self.echo and isinstance(msg, Blob) and src != self.node_id:
            ready.messages.append(Send((src,), Blob(msg.size, msg.tag + 1000)))
        return ready

    def tick(self, now: int) -> Ready:
        """Record the tick; emit ``tick_sends``."""
        self.ticks.append(now)
        return Ready(messages=list(self.tick_sends))


def recorders(n: int, **kw: Any) -> list[Recorder]:
    """``n`` recorders with ids 0..n-1."""
    return [Recorder(i, **kw) for i in range(n)]


def attach(sim: Any) -> None:
    """Let every recorder read the simulator's clock."""
    for node in sim.nodes:
        node.sim = sim
