"""Driving protocol nodes into interesting states, and hostile messages to feed them.

:class:`World` is a minimal deterministic network (FIFO delivery, a fixed tick) over any nodes
with the node interface (``step``/``tick`` -> ``Ready``); it can silence a node or cut one off,
and it records every message sent, which the stateful harnesses replay and mutate.

:class:`Adversary` turns fuzz bytes into messages the way a faulty replica (id ``n - 1``) and
the clients could: decode raw bytes, replay a recorded message (from any sender), or change
fields of a recorded message (boundary integers, other digests, nested messages dropped,
duplicated or swapped) and authenticate the result *in its own name* — it holds only its own
keys, so a message it forges in an honest replica's name keeps that replica's old authenticator
and must be refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fuzz.common import INTERESTING_INTS, ByteReader, expect
from medbench.consensus.pbft.messages import (
    WIRE_TYPES,
    Block,
    MessageError,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    StateBatch,
    compute_batch_digest,
)
from medbench.consensus.pbft.persist import decode_record, encode_record
from medbench.consensus.pbft.wire import decode_message
from medbench.node import Ready


class World:
    """Nodes on a FIFO network driven by a fixed tick (see the module docstring)."""

    def __init__(self, nodes: dict[int, Any], tick_us: int = 10_000) -> None:
        self.nodes = nodes
        self.tick_us = tick_us
        self.now = 0
        self.queue: deque[tuple[int, int, Any]] = deque()
        self.sent: list[Any] = []
        self.silent: set[int] = set()
        self.cut: set[int] = set()

    def apply(self, src: int, ready: Ready) -> None:
        """Queue what ``src`` sent (unless it is silenced or cut off)."""
        for send in ready.messages:
            self.sent.append(send.msg)
            if src in self.silent:
                continue
            for dst in send.dsts:
                if dst != src and dst in self.nodes and not {src, dst} & self.cut:
                    self.queue.append((src, dst, send.msg))

    def step(self, dst: int, src: int, msg: Any) -> None:
        """Deliver ``msg`` from ``src`` to ``dst`` now."""
        self.apply(dst, self.nodes[dst].step(src, msg))

    def run(self, duration_us: int) -> None:
        """Deliver everything queued, tick every node, until ``duration_us`` has passed."""
        end = self.now + duration_us
        while self.now < end:
            budget = 20_000
            while self.queue and budget:
                budget -= 1
                src, dst, msg = self.queue.popleft()
                self.step(dst, src, msg)
            self.now += self.tick_us
            for i in sorted(self.nodes):
                self.apply(i, self.nodes[i].tick(self.now))

    def run_until(self, done: Callable[[], bool], limit_us: int) -> bool:
        """Deliver one message at a time (ticking when none is queued) until ``done()``."""
        end = self.now + limit_us
        while self.now < end:
            if done():
                return True
            if self.queue:
                src, dst, msg = self.queue.popleft()
                self.step(dst, src, msg)
                continue
            self.now += self.tick_us
            for i in sorted(self.nodes):
                self.apply(i, self.nodes[i].tick(self.now))
        return done()


def _author_field(msg: Any) -> str | None:
    if isinstance(msg, Request):
        return "client"
    if isinstance(msg, Block):
        return "blocker"
    return "replica" if hasattr(msg, "replica") else None


class Adversary:
    """Hostile messages from fuzz bytes (see the module docstring)."""

    def __init__(
        self,
        keyrings: dict[int, Any],
        attackers: Sequence[int],
        pool: Iterable[Any],
        n: int,
    ) -> None:
        self.keyrings = keyrings
        self.attackers = tuple(attackers)
        self.n = n
        self.pool = [
            m for m in dict.fromkeys(pool) if isinstance(m, WIRE_TYPES) and not isinstance(m, Reply)
        ]
        self.by_type: dict[type, list[Any]] = {}
        for m in self.pool:
            self.by_type.setdefault(type(m), []).append(m)
        proofs = []
        for m in self.pool:
            proofs.extend(getattr(m, "prepared", ()))
        self.proofs = proofs or None
        self.types = sorted(self.by_type, key=lambda t: t.__name__)
        digests = {bytes(32)}
        for m in self.pool:
            for name in ("batch_digest", "state_digest", "prev_id"):
                value = getattr(m, name, None)
                if value is not None:
                    digests.add(value)
            digests.add(m.digest())
        self.digests = sorted(digests)
        self.ids = sorted(set(range(n + 2)) | set(self.attackers))

    # --- authentication -------------------------------------------------------------------------
    def seal(self, msg: Any, signer: int) -> Any:
        """``msg`` authenticated by ``signer`` (for a reply: to its client)."""
        to = msg.client if isinstance(msg, Reply) else None
        return msg.with_auth(self.keyrings[signer].sign(msg.body(), to))

    def seal_own(self, msg: Any) -> Any:
        """Re-authenticate ``msg`` if its author is the adversary (else keep its authenticator)."""
        field = _author_field(msg)
        author = getattr(msg, field) if field else None
        return self.seal(msg, author) if author in self.attackers else msg

    # --- drawing messages -----------------------------------------------------------------------
    def raw(self, r: ByteReader) -> tuple[int, Any] | None:
        """Decode a chunk of fuzz bytes; maybe re-authenticate it as an attacker."""
        try:
            msg = decode_message(r.chunk(4096))
        except MessageError:
            return None
        signer = r.pick(self.attackers)
        if r.below(4):
            msg = self._claim(msg, signer, r) or msg
            msg = self.seal(msg, signer)
        return signer, msg

    def replay(self, r: ByteReader) -> tuple[int, Any] | None:
        """A recorded message, from any sender."""
        if not self.pool:
            return None
        msg = self._recorded(r)
        field = _author_field(msg)
        author = getattr(msg, field) if field else -1
        if r.below(4) and author in self.ids:  # mostly as its author sent it
            return author, msg
        return r.pick(self.ids), msg

    def mutated(self, r: ByteReader) -> tuple[int, Any] | None:
        """A recorded message with one to three fields changed, authenticated as an attacker."""
        if not self.pool:
            return None
        msg = self._recorded(r)
        signer = r.pick(self.attackers)
        for _ in range(1 + r.below(3)):
            changed = self._mutate(msg, r)
            if changed is None:
                return None
            msg = changed
        if r.below(4):  # mostly in its own name, so the authenticator holds
            msg = self._claim(msg, signer, r) or msg
        return signer, self.seal(msg, signer)

    def _recorded(self, r: ByteReader) -> Any:
        """A recorded message, every kind as likely as any other."""
        return r.pick(self.by_type[r.pick(self.types)])

    def _claim(self, msg: Any, signer: int, r: ByteReader) -> Any | None:
        field = _author_field(msg)
        if field is None or (field == "client" and signer < self.n):
            return None
        value = signer if field != "blocker" else signer % self.n
        return self._replace(msg, {field: value})

    @staticmethod
    def _replace(msg: Any, changes: dict[str, Any]) -> Any | None:
        values = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg) if f.init}
        values.update(changes)
        try:
            return type(msg)(**values)
        except (MessageError, TypeError):
            return None

    def _mutate(self, msg: Any, r: ByteReader) -> Any | None:
        names = [f.name for f in dataclasses.fields(msg) if f.init and f.name != "auth"]
        name = r.pick(names)
        value = self._new_value(getattr(msg, name), r)
        changes = {name: value}
        if isinstance(msg, PrePrepare) and name in ("batch", "timestamp") and r.flag():
            batch = value if name == "batch" else msg.batch
            ts = value if name == "timestamp" else msg.timestamp
            if isinstance(batch, tuple) and type(ts) is int and ts >= 0:
                with contextlib.suppress(MessageError, AttributeError, TypeError):
                    changes["batch_digest"] = compute_batch_digest(ts, batch)
        return self._replace(msg, changes)

    def _new_value(self, old: Any, r: ByteReader) -> Any:
        if type(old) is int:
            choice = r.below(5)
            if choice == 0:
                return old + r.pick((-1, 1, 2, self.n))
            if choice == 1:
                return r.pick(self.ids)
            if choice == 2:
                return -1
            return r.pick(INTERESTING_INTS)
        if type(old) is bytes:
            choice = r.below(4)
            if choice == 0:
                return r.pick(self.digests)
            if choice == 1:
                return r.take(len(old)).ljust(len(old), b"\0")
            if choice == 2:
                return b""
            return r.chunk(64)
        if type(old) is str:
            return r.pick(("", "no-grant", "x" * 64, "x" * 65))
        if type(old) is tuple:
            return self._new_tuple(old, r)
        return old

    def _new_tuple(self, old: tuple[Any, ...], r: ByteReader) -> tuple[Any, ...]:
        items = list(old)
        choice = r.below(5)
        if choice == 0 and items:
            del items[r.below(len(items))]
        elif choice == 1 and items:
            items.append(r.pick(items))
        elif choice == 2:
            items = []
        elif choice == 3 and items:
            i = r.below(len(items))
            items[i] = self._like(items[i], r)
        elif items:
            items.reverse()
        return tuple(items)

    def _like(self, item: Any, r: ByteReader) -> Any:
        """Another value of the kind of ``item`` (a recorded message of its type, a proof...)."""
        if isinstance(item, PreparedProof) and self.proofs:
            return r.pick(self.proofs)
        if isinstance(item, StateBatch):
            return StateBatch(item.sequence + r.below(3), item.timestamp, item.items[::-1])
        if type(item) is bytes:
            return r.pick(self.digests)
        if isinstance(item, (Request, Block)) and r.flag():
            candidates = self.by_type.get(Request, []) + self.by_type.get(Block, [])
            return r.pick(candidates) if candidates else item
        same = self.by_type.get(type(item))
        if same:
            return r.pick(same)
        mutated = self._mutate(item, r)
        return self.seal_own(mutated) if mutated is not None else item

    def draw(self, r: ByteReader) -> tuple[int, Any] | None:
        """One hostile ``(src, message)`` (or ``None`` when the bytes make none)."""
        kind = r.u8() % 6
        if kind == 0:
            return self.raw(r)
        if kind in (1, 2):
            return self.replay(r)
        return self.mutated(r)


TICKS: tuple[int, ...] = (0, 1, 1_000, 10_000, 100_000, 500_000, 1_000_000, 5_000_000, 1 << 40)
"""How far the harness moves a node's clock on a tick action."""


def check_ready(ready: Any, node_id: int) -> None:
    """What a node hands its driver must be sendable and storable: every message encodes and
    decodes back to itself, every persisted record encodes (and a message record round-trips)."""
    expect(isinstance(ready, Ready), f"step returned {type(ready).__name__}, not a Ready")
    for send in ready.messages:
        msg = send.msg
        expect(all(type(d) is int for d in send.dsts), "a send to a non-integer destination")
        if isinstance(msg, WIRE_TYPES):
            data = msg.encode()  # type: ignore[attr-defined]
            expect(decode_message(data) == msg, f"node {node_id} sent an undecodable {msg!r}")
        else:
            msg.encode()
    for rec in ready.persist:
        data = encode_record(rec)
        if isinstance(rec, WIRE_TYPES):
            expect(decode_record(data) == rec, f"node {node_id} persisted an unreadable {rec!r}")


def run_actions(
    node: Any,
    node_id: int,
    adversary: Adversary,
    r: ByteReader,
    now: int,
    extra: Callable[[ByteReader], tuple[int, Any] | None] | None = None,
    max_actions: int = 12,
) -> None:
    """Feed ``node`` up to ``max_actions`` hostile messages and clock ticks drawn from ``r``."""
    for _ in range(max_actions):
        if not r.remaining():
            return
        action = r.u8() % 8
        if action == 7:
            now += r.pick(TICKS)
            check_ready(node.tick(now), node_id)
            continue
        drawn = extra(r) if extra is not None and action == 6 else adversary.draw(r)
        if drawn is None:
            continue
        src, msg = drawn
        check_ready(node.step(src, msg), node_id)
