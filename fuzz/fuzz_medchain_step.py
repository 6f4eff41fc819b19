"""``MedicalChainNode.step()`` of a Medical Chain node fed hostile messages
(``medbench.medchain.node``), in blocker mode and in integrated mode.

A four-hospital deployment (:func:`medbench.medchain.make_consortium`, modeled PBFT
authenticators, user clients 8..11) runs care sessions (sealed grants, countersigned records,
sealed reads; blocks stored with their bodies in each node's SQLite store) on
:class:`fuzz.worlds.World`, into two states per mode: normal operation, and a view change in
progress (the primary and the next one silent). Each honest node (0, 1, 2) is kept as a template
with a copy of its SQLite file.

Per input: the first bytes pick the mode, the state and the node, which is rebuilt from its
template (a deep copy over a fresh copy of its store, so every input starts from the same
state); the rest is up to twelve actions of :func:`fuzz.worlds.run_actions` — PBFT messages
(raw bytes, replays, field mutations authenticated by the faulty replica 3 or a client) and
side messages (block signatures and requests for them: raw bytes through
``decode_side_message``, recorded ones, or made up), and clock ticks. The only allowed outcome
of ``step`` and ``tick`` is a ``Ready`` whose messages encode (and decode back) and whose
records encode; any exception is a finding.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from fuzz import samples
from fuzz.common import ByteReader, Harness, OneInput
from fuzz.worlds import Adversary, World, run_actions
from medbench.consensus.pbft import Submit
from medbench.medchain import make_consortium, request_transaction
from medbench.medchain.block_format import BlockSignature, SignatureWanted, decode_side_message
from medbench.store.ledger_store import LedgerStore
from medbench.store.node_store import NodeStore

N = 4
USERS = (8, 9, 10, 11)
ATTACKERS = (3, 3, 3, 7, 8, 9)  # replica 3, its hospital's client, two user clients
TARGETS = (0, 1, 2)
MODES = ("blocker", "integrated")
STATES = ("normal", "view-change")


def _drive(mode: str, state: str) -> tuple[Any, World]:
    dep = make_consortium(
        N, 1, samples.scratch_dir(), auth="modeled", block_mode=mode, synchronous="NORMAL",
        block_size=4, block_interval_us=50_000, checkpoint_interval=4, log_window=16,
        view_change_timeout_us=300_000,
    )  # fmt: skip
    world = World(dep.nodes)

    def session(k: int, t0: int | None = None) -> None:
        user = USERS[k % len(USERS)]
        for req in samples.access_requests(dep, k, t0):
            op = request_transaction(req).to_wire()
            world.apply(user, dep.nodes[user].step(user, Submit(op)))

    session(0)
    world.run(300_000)
    session(1)
    world.run(1_500_000)
    if state == "view-change":
        world.silent |= {0, 1}
        session(2)
        world.run(2_500_000)
    return dep, world


class _Template:
    """One node kept for restoring: the object (its store closed) and its SQLite file."""

    def __init__(self, node: Any, now: int) -> None:
        node.store.close()
        self.node = node
        self.now = now
        self.db = Path(node.setup.store_path).read_bytes()


@functools.cache
def _templates() -> tuple[list[list[_Template]], list[Adversary], list[Any]]:
    templates, adversaries, side = [], [], []
    for mode in MODES:
        pool: list[Any] = []
        for state in STATES:
            dep, world = _drive(mode, state)
            pool += world.sent[-600:]
            side += [m for m in world.sent if isinstance(m, (BlockSignature, SignatureWanted))]
            templates.append([_Template(dep.nodes[t], world.now) for t in TARGETS])
        adversaries.append(Adversary(dep.keyrings, ATTACKERS, pool, N))
    return templates, adversaries, list(dict.fromkeys(side))


def setup() -> OneInput:
    templates, adversaries, side = _templates()
    scratch = samples.scratch_dir() / "node.sqlite"
    block_ids = sorted({m.block_id for m in side}) or [bytes(32)]

    def side_message(r: ByteReader) -> tuple[int, Any] | None:
        src = r.pick((*ATTACKERS, 0, 1, 2))
        choice = r.u8() % 4
        if choice == 0:
            try:
                return src, decode_side_message(r.chunk(1024))
            except ValueError:
                return None
        if choice == 1 and side:
            return src, r.pick(side)
        if choice == 2:
            return src, SignatureWanted(r.pick(block_ids))
        sig = r.chunk(100) or b"\x00"
        return src, BlockSignature(r.pick(block_ids), sig)

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        m = r.below(len(MODES))
        group = templates[m * len(STATES) + r.below(len(STATES))]
        t = r.below(len(TARGETS))
        template = group[t]
        for suffix in ("", "-wal", "-shm"):
            Path(f"{scratch}{suffix}").unlink(missing_ok=True)
        scratch.write_bytes(template.db)
        store = NodeStore(scratch, synchronous="NORMAL")
        try:
            memo = {id(template.node.store): store, id(template.node.ledger): LedgerStore(store)}
            node = copy.deepcopy(template.node, memo)
            run_actions(node, TARGETS[t], adversaries[m], r, template.now, extra=side_message)
        finally:
            store.close()

    return one_input


def seeds() -> list[bytes]:
    out = []
    for m in range(len(MODES)):
        for s in range(len(STATES)):
            for t in range(len(TARGETS)):
                prefix = bytes([m, s, t])
                out.append(prefix + bytes([1, 1, 7, 2, 3, 9, 3, 4, 0, 1, 7, 5, 2, 8, 3]))
                out.append(prefix + bytes([6, 2, 1, 0, 6, 1, 3, 1, 6, 3, 0, 4, 1, 7, 4]))
                out.append(prefix + bytes([3, 4, 0, 2, 5, 7, 6, 4, 1, 5, 2, 0, 1, 7, 5]))
    return out


HARNESS = Harness(
    name="medchain_step",
    summary="medchain MedicalChainNode.step/tick fed hostile messages (blocker and integrated)",
    allowed=(),
    setup=setup,
    seeds=seeds,
    max_len=8192,
    timeout_s=30,
)
