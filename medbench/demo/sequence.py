"""The referral walk-through's PBFT round as a message-sequence diagram (PNG).

:func:`step4_messages` picks, from a recorded trace (:mod:`medbench.sim.trace`), the copies of
step 4 of docs/medical-chain.md §1.7: the two requests carrying TX1 and TX2, the PRE-PREPARE,
PREPAREs and COMMITs of the sequence number that ordered them, and the replies to their clients.
:func:`draw` renders them: one vertical lifeline per node (validators, then clients), time going
down in virtual milliseconds, one arrow per copy from its send time on the sender to its arrival
on the receiver (latency, jitter and queueing as the simulator delivered them), coloured by kind
with a legend. Agg backend, fixed PNG metadata: the bytes depend only on the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from medbench.consensus.pbft.messages import Commit, Prepare, PrePrepare, Reply, Request
from medbench.sim.trace import Delivery

KINDS: tuple[tuple[type, str, str], ...] = (
    (Request, "REQUEST", "C0"),
    (PrePrepare, "PRE-PREPARE", "C1"),
    (Prepare, "PREPARE", "C2"),
    (Commit, "COMMIT", "C3"),
    (Reply, "REPLY", "C4"),
)
"""Message classes drawn, their labels and colours (in protocol order)."""


def step4_messages(
    deliveries: Sequence[Delivery], operations: Sequence[bytes], sequence: int
) -> list[Delivery]:
    """The copies of one PBFT round: requests of ``operations``, the phases of ``sequence``,
    and the replies to those requests' clients."""
    ops = set(operations)
    asked: set[tuple[int, int]] = set()
    out = []
    for d in deliveries:
        m = d.msg
        if isinstance(m, Request) and m.operation in ops:
            asked.add((m.client, m.timestamp))
            out.append(d)
        elif (isinstance(m, (PrePrepare, Prepare, Commit)) and m.sequence == sequence) or (
            isinstance(m, Reply) and (m.client, m.timestamp) in asked
        ):
            out.append(d)
    return out


def _kind(msg: Any) -> tuple[str, str]:
    for cls, label, colour in KINDS:
        if isinstance(msg, cls):
            return label, colour
    return type(msg).__name__, "0.5"


def draw(
    copies: Sequence[Delivery], name: Callable[[int], str], path: str | Path, title: str
) -> Path:
    """Render ``copies`` as a message-sequence diagram to ``path`` (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    nodes = sorted({d.src for d in copies} | {d.dst for d in copies})
    x = {node: i for i, node in enumerate(nodes)}
    t0 = min((d.sent_us for d in copies), default=0)
    t1 = max((d.arrived_us for d in copies), default=1)

    def ms(us: int) -> float:
        return (us - t0) / 1000

    fig, ax = plt.subplots(figsize=(1.6 * len(nodes) + 2.8, 7.5), dpi=100)
    for node in nodes:
        ax.axvline(x[node], color="0.6", linewidth=1.0, zorder=0)
    used: dict[str, str] = {}
    for d in copies:
        label, colour = _kind(d.msg)
        used.setdefault(label, colour)
        ax.annotate(
            "",
            xy=(x[d.dst], ms(d.arrived_us)),
            xytext=(x[d.src], ms(d.sent_us)),
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "linewidth": 1.1,
                "shrinkA": 0,
                "shrinkB": 0,
            },
        )
    ax.set_xlim(-0.6, len(nodes) - 0.4)
    ax.set_ylim(ms(t1) * 1.04 + 0.05, -0.05 * ms(t1) - 0.05)  # time goes down
    ax.set_xticks(range(len(nodes)))
    ax.set_xticklabels([name(n) for n in nodes])
    ax.xaxis.tick_top()
    ax.set_ylabel(f"virtual time since the first request (ms; t0 = {t0 / 1e6:.3f} s)")
    ax.set_title(title, fontsize="medium", pad=28)
    order = [label for _cls, label, _c in KINDS if label in used]
    order += [k for k in used if k not in order]
    ax.legend(
        [Line2D([0], [0], color=used[k], linewidth=2) for k in order],
        order,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize="small",
    )
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, metadata={"Software": None})
    plt.close(fig)
    return out


__all__ = ["KINDS", "draw", "step4_messages"]
