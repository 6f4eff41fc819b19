"""``Replica.step()`` of a PBFT replica fed hostile messages (``medbench.consensus.pbft``).

A group of four replicas and two clients runs on :class:`fuzz.worlds.World`, with ``modeled``
or ``macs`` authenticators, integrated or blocker blocks, into one of four states: normal
operation (batches committed, checkpoints stable), a view change in progress (primary silent,
the new primary's NEW-VIEW never delivered), the view after a view change, and a replica that
fell behind and is fetching state. Each state of each honest replica (0, 1, 2) is pickled.

Per input: the first bytes pick the world, the state and the replica (restored from its
snapshot, so every input starts from the same state); the rest is up to twelve actions of
:func:`fuzz.worlds.run_actions` — raw bytes through ``decode_message``, replays, field
mutations of recorded messages authenticated by the faulty replica 3 or a client, clock ticks.
The only allowed outcome of ``step`` and ``tick`` is a ``Ready`` whose messages encode and
decode back and whose records encode; any exception is a finding.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

from fuzz.common import ByteReader, Harness, OneInput
from fuzz.worlds import Adversary, World, run_actions
from medbench.consensus.pbft import BlockMode, Client, Config, Replica, Submit, make_keyrings

N = 4
CLIENTS = (4, 5)
ATTACKERS = (3, 3, 3, 4, 5)  # replica 3 most often: only it can sign replica messages
TARGETS = (0, 1, 2)
STATES = ("normal", "view-change", "new-view", "lagging")
WORLDS = (("modeled", "integrated"), ("macs", "integrated"), ("modeled", "blocker"),
          ("macs", "blocker"))  # fmt: skip


def _world(scheme: str, mode: str) -> tuple[World, dict[int, Any], Config]:
    config = Config(
        n=N,
        checkpoint_interval=4,
        log_window=16,
        max_batch_size=2,
        block_mode=BlockMode(mode),
        block_size=2,
        block_interval_us=50_000,
        view_change_timeout_us=200_000,
        fetch_timeout_us=100_000,
    )
    keyrings = make_keyrings(scheme, N, range(N + len(CLIENTS)), seed=b"fuzz-pbft")
    nodes: dict[int, Any] = {i: Replica(i, config, keyrings[i]) for i in range(N)}
    for c in CLIENTS:
        nodes[c] = Client(c, N, keyrings[c], retransmit_timeout_us=150_000)
    return World(nodes), keyrings, config


def _submit(world: World, count: int, tag: str) -> None:
    for k in range(count):
        c = CLIENTS[k % len(CLIENTS)]
        world.apply(c, world.nodes[c].step(c, Submit(b"%s-%d" % (tag.encode(), k))))


def _drive(scheme: str, mode: str, state: str) -> World:
    world, _, _ = _world(scheme, mode)
    _submit(world, 10, "a")
    world.run(600_000)
    if state == "view-change":
        world.silent |= {0, 1}  # the primary and the next one: view 1 never starts
        _submit(world, 2, "b")
        world.run(400_000)
    elif state == "new-view":
        world.silent.add(0)
        _submit(world, 2, "b")
        world.run(1_500_000)
    elif state == "lagging":
        world.cut.add(2)
        _submit(world, 12, "c")
        world.run(800_000)
        world.cut.clear()
        _submit(world, 2, "d")
        # stop once replica 2 asked for state, before the answer arrives
        world.run_until(lambda: world.nodes[2].fetch_deadline is not None, 1_000_000)
    return world


@functools.cache
def _snapshots() -> tuple[list[tuple[int, list[bytes]]], list[Adversary]]:
    """Per (world, state): the clock and each target replica pickled; one adversary per world."""
    snaps, adversaries = [], []
    for scheme, mode in WORLDS:
        pool: list[Any] = []
        for state in STATES:
            world = _drive(scheme, mode, state)
            snaps.append((world.now, [pickle.dumps(world.nodes[t]) for t in TARGETS]))
            pool += world.sent[-400:]
        keyrings = _world(scheme, mode)[1]
        adversaries.append(Adversary(keyrings, ATTACKERS, pool, N))
    return snaps, adversaries


def setup() -> OneInput:
    snaps, adversaries = _snapshots()

    def one_input(data: bytes) -> None:
        r = ByteReader(data)
        w = r.below(len(WORLDS))
        now, replicas = snaps[w * len(STATES) + r.below(len(STATES))]
        t = r.below(len(TARGETS))
        replica = pickle.loads(replicas[t])
        run_actions(replica, TARGETS[t], adversaries[w], r, now)

    return one_input


def seeds() -> list[bytes]:
    out = []
    for w in range(len(WORLDS)):
        for s in range(len(STATES)):
            t = (w + s) % len(TARGETS)
            prefix = bytes([w, s, t])
            # replays, mutations and a tick, then raw decoded messages
            out.append(prefix + bytes([1, 1, 7, 2, 3, 9, 3, 4, 0, 1, 7, 5, 2, 8, 3]))
            out.append(prefix + bytes([3, 0, 0, 2, 5, 7, 6, 4, 1, 5, 2, 0, 1, 7, 4]))
    # a raw message: action 0 (draw), kind 0 (raw), 2-byte length, the message, signer, flag
    from fuzz import samples

    for m in samples.pbft_messages()[:8]:
        data = m.encode()
        out.append(bytes([0, 0, 0, 0, 0]) + len(data).to_bytes(2, "big") + data + b"\x00\x01")
    return out


HARNESS = Harness(
    name="pbft_step",
    summary="consensus.pbft Replica.step/tick fed hostile messages (4 states x 4 worlds)",
    allowed=(),
    setup=setup,
    seeds=seeds,
    max_len=8192,
    timeout_s=20,
)
