"""Fault schedules for the simulator: at time t, cut/heal links, isolate nodes, crash/recover.

A schedule is a list of :class:`FaultEvent`; :func:`parse` reads the compact text form used on the
command line and in sweep grids, events separated by ``;``::

    crash:3@200ms; recover:3@800ms; cut:0-1@1s; heal:0-1@2s; isolate:2@50ms; rejoin:2@90ms;
    partition:0,1|2,3@100ms; heal_all@500ms

Times take a unit suffix ``us``, ``ms`` or ``s`` (plain numbers are microseconds) and become
integer microseconds. What each action does is documented on :class:`Action`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class FaultSpecError(ValueError):
    """A fault schedule string is malformed."""


class Action(enum.Enum):
    """What a fault event does (see :class:`medbench.sim.engine.Simulator` for the semantics)."""

    CRASH = "crash"  # stop delivering to and ticking the node; its queued inputs are lost
    RECOVER = "recover"  # rebuild the node from its persisted records (the recovery factory)
    CUT = "cut"  # drop messages sent either way between two nodes
    HEAL = "heal"  # undo a cut
    ISOLATE = "isolate"  # cut every link of one node
    REJOIN = "rejoin"  # heal every link of one node
    PARTITION = "partition"  # cut every link between different groups
    HEAL_ALL = "heal_all"  # heal every link


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """One scheduled fault: ``action`` at ``at_us`` on ``nodes`` (or ``groups`` for partitions)."""

    at_us: int
    action: Action
    nodes: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()

    def __post_init__(self) -> None:
        if self.at_us < 0:
            raise FaultSpecError("fault time must be non-negative")
        arity = {
            Action.CRASH: 1,
            Action.RECOVER: 1,
            Action.ISOLATE: 1,
            Action.REJOIN: 1,
            Action.CUT: 2,
            Action.HEAL: 2,
            Action.PARTITION: 0,
            Action.HEAL_ALL: 0,
        }[self.action]
        if len(self.nodes) != arity:
            raise FaultSpecError(f"{self.action.value} takes {arity} node(s), got {self.nodes}")
        if self.action is Action.PARTITION and len(self.groups) < 2:
            raise FaultSpecError("partition needs at least two groups")


_TIME = re.compile(r"^\s*(\d+)\s*(us|ms|s)?\s*$")
_SCALE = {None: 1, "us": 1, "ms": 1_000, "s": 1_000_000}


def parse_time(text: str) -> int:
    """``"200ms"`` -> 200000 (integer microseconds)."""
    m = _TIME.match(text)
    if not m:
        raise FaultSpecError(f"bad time {text!r}: expected an integer with us, ms or s")
    return int(m.group(1)) * _SCALE[m.group(2)]


def _ints(text: str, sep: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(sep) if x.strip())
    except ValueError:
        raise FaultSpecError(f"bad node list {text!r}") from None


def parse(spec: str) -> list[FaultEvent]:
    """Parse a schedule string (see the module docstring); the empty string is no faults."""
    events = []
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        if "@" not in part:
            raise FaultSpecError(f"fault {part!r} lacks '@time'")
        head, when = part.rsplit("@", 1)
        at = parse_time(when)
        name, _, args = head.partition(":")
        try:
            action = Action(name.strip())
        except ValueError:
            raise FaultSpecError(f"unknown fault action {name!r}") from None
        if action is Action.PARTITION:
            groups = tuple(_ints(g, ",") for g in args.split("|"))
            events.append(FaultEvent(at, action, (), groups))
        elif action in (Action.CUT, Action.HEAL):
            events.append(FaultEvent(at, action, _ints(args, "-")))
        else:
            events.append(FaultEvent(at, action, _ints(args, ",")))
    return events
