"""Baseline protocol messages (``medbench.consensus.baselines``): bytes from a peer of MedRec's
PoW, MedRec 2.0's Clique, MDSM's DPoS, ModelChain's PoI or the central relay.

The first byte picks the protocol, the second the sending peer; the rest is the message.
``decode_message`` (with the protocol's message classes) may return a message or raise
:class:`~medbench.consensus.baselines.common.MalformedMessage`; a message re-encodes to the
same message. Then a node of that protocol, in a state reached by a short fault-free run, takes
the bytes in ``step``: it must return a ``Ready`` (a refusal is a counted note), never raise.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

from fuzz.common import ByteReader, Harness, OneInput, expect
from medbench import codec
from medbench.consensus.baselines.common import (
    MalformedMessage,
    Submit,
    TxGossip,
    decode_message,
)
from medbench.consensus.baselines.poi import decode_weights
from medbench.experiments.baselines import make_nodes

PROTOCOLS: dict[str, tuple[int, dict[str, Any]]] = {
    "pow": (3, {}),
    "poa": (3, {}),
    "dpos": (5, {"delegates": 3, "auditors": 2}),
    "poi": (3, {}),
    "central": (3, {}),
}


@functools.cache
def _run(name: str) -> tuple[list[Any], list[bytes]]:
    """The nodes of ``name`` after a short fault-free run, and every message they sent."""
    n, params = PROTOCOLS[name]
    nodes = make_nodes(name, n, params, 1)
    sent: list[Any] = []
    queue: list[tuple[int, int, Any]] = []

    def out(src: int, ready: Any) -> None:
        for s in ready.messages:
            sent.append(s.msg)
            queue.extend((d, src, s.msg) for d in s.dsts if d != src)

    now = 0
    for k in range(6):
        out(k % n, nodes[k % n].step(k % n, Submit(bytes([k + 1]) * 32, 64 + k, now)))
    for _ in range(40):
        while queue:
            dst, src, msg = queue.pop(0)
            out(dst, nodes[dst].step(src, msg))
        deadlines = [d for d in (nd.next_deadline() for nd in nodes) if d is not None]
        now = max(now + 1, min(deadlines)) if deadlines else now + 1_000_000
        for i, nd in enumerate(nodes):
            out(i, nd.tick(now))
    return nodes, [m.encode() for m in sent]


def setup() -> OneInput:
    names = list(PROTOCOLS)
    snapshots = {name: [pickle.dumps(nd) for nd in _run(name)[0]] for name in names}
    classes = {name: tuple(type(_run(name)[0][0]).HANDLERS) for name in names}

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        name = names[r.u8() % len(names)]
        src = r.u8()
        payload = r.rest()
        nodes = snapshots[name]
        node = pickle.loads(nodes[src % len(nodes)])
        node.step((src + 1) % len(nodes), payload)  # must not raise, whatever the bytes
        if name == "poi":
            try:
                decode_weights(payload, 10)
            except Exception as exc:
                expect(type(exc).__name__ == "Rejected", f"decode_weights raised {exc!r}")
        msg = decode_message(payload, classes[name])
        if not isinstance(msg, TxGossip):
            again = decode_message(msg.encode(), classes[name])
            expect(again == msg, "a decoded message re-encodes to another one")

    return one_input


def seeds() -> list[bytes]:
    out = []
    for i, name in enumerate(PROTOCOLS):
        by_kind: dict[str, list[bytes]] = {}
        for m in dict.fromkeys(_run(name)[1]):
            by_kind.setdefault(codec.decode(m)[0], []).append(m)
        msgs = [m for ms in by_kind.values() for m in ms[:4]]
        out += [bytes([i, k]) + m for k, m in enumerate(msgs)]
    return out


HARNESS = Harness(
    name="baselines",
    summary="consensus.baselines decode_message + node step (PoW, PoA, DPoS, PoI, relay)",
    allowed=(MalformedMessage,),
    setup=setup,
    seeds=seeds,
    max_len=8192,
)
