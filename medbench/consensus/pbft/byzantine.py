"""Byzantine behaviours as wrappers around an honest PBFT replica (same node interface).

Theory of operation
-------------------
A faulty replica is an honest :class:`~medbench.consensus.pbft.replica.Replica` (``inner``) whose
inputs and outputs a wrapper rewrites: it can swallow, alter, duplicate or redirect messages, and
it signs what it alters with the replica's own keys (a Byzantine replica owns its keys; it cannot
forge anyone else's authenticator). The behaviours are the attacks of docs/medical-chain.md §1.7
step 6 and the classic PBFT fault list:

* :class:`SilentPrimary` — as primary it never sends a PRE-PREPARE or NEW-VIEW (clients time out,
  backups change view);
* :class:`DroppingPrimary` — as primary it ignores the requests of chosen clients;
* :class:`AlteringPrimary` — as primary it alters a request's operation inside the batch (the
  client's signature no longer matches, backups refuse to prepare, the view changes);
* :class:`EquivocatingPrimary` — different pre-prepares (same requests, different digests) to the
  two halves of the backups;
* :class:`LateEquivocator` — as primary it keeps offering every backup a conflicting batch for
  sequences it already assigned (its NEW-VIEW's included): an honest backup refuses, one that
  forgot what it accepted (a restart that lost a record) would vote twice;
* :class:`SkewedClockPrimary` — as primary it dates its batches ``shift_us`` away from its clock
  after its first ``honest`` ones (far future, or back before the previous batch: TOCS §4.6 has
  the backups refuse both, so the view changes);
* :class:`PartialAuthenticator` — in MAC mode, spoils the entry of chosen replicas in the
  authenticators of its pre-prepares: they verify at some honest replicas and not at others (the
  MAC-mode limitation documented in :mod:`medbench.consensus.auth`);
* :class:`BadVoter` — PREPAREs and COMMITs with a wrong view, sequence or digest;
* :class:`Replayer` — replays old messages of its own and forwards others' messages as if sent
  by itself, and forges messages in another replica's name (bad authenticator);
* :class:`SplitBrain` — a *coalition* of f+1 replicas (primary + colluding backups) that makes two
  halves of the honest replicas commit different batches; with f+1 faulty replicas PBFT's safety
  no longer holds, which shows the safety checker is not vacuous.

* :class:`Crashable` — crash and recover: while crashed the replica hears and says nothing; on
  recovery it is rebuilt by :meth:`Replica.recover` from the records it persisted (everything
  in memory is lost), then fetches what it missed from its peers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from medbench.consensus.auth import Keyring
from medbench.consensus.pbft.messages import (
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    Request,
    compute_batch_digest,
)
from medbench.consensus.pbft.replica import Replica
from medbench.hashing import sha256
from medbench.node import Ready, Send


def _seal(keyring: Keyring, msg: Any) -> Any:
    object.__setattr__(msg, "auth", keyring.sign(msg.body()))
    return msg


class Byzantine:
    """Base wrapper: forwards to ``inner`` and rewrites outgoing messages with :meth:`outgoing`."""

    def __init__(self, inner: Replica) -> None:
        self.inner = inner
        self.node_id = inner.node_id

    def step(self, src: int, msg: Any) -> Ready:
        """Deliver ``msg`` (possibly rewritten by :meth:`incoming`) and rewrite the output."""
        msg = self.incoming(src, msg)
        if msg is None:
            return Ready()
        return self._filter(self.inner.step(src, msg))

    def tick(self, now: int) -> Ready:
        """Tick the honest replica and rewrite its output."""
        return self._filter(self.inner.tick(now))

    def incoming(self, src: int, msg: Any) -> Any:
        """Rewrite or swallow (return ``None``) an incoming message; default: unchanged."""
        return msg

    def outgoing(self, send: Send) -> list[Send]:
        """Rewrite one outgoing send; default: unchanged."""
        return [send]

    def _filter(self, ready: Ready) -> Ready:
        out: list[Send] = []
        for send in ready.messages:
            out.extend(self.outgoing(send))
        ready.messages = out
        return ready


class Crashable:
    """A replica that can crash and recover from the records it persisted (its stable storage).

    The wrapper plays the driver's storage: it keeps every ``Ready.persist`` record. ``crash()``
    drops the replica object (all volatile state is gone); ``recover(now)`` rebuilds it from the
    records with :meth:`Replica.recover` and returns the recovering replica's first output.
    """

    def __init__(self, inner: Replica) -> None:
        self.inner = inner
        self.node_id = inner.node_id
        self.records: list[Any] = []
        self.crashed = False

    def step(self, src: int, msg: Any) -> Ready:
        """Deliver ``msg`` unless crashed; keep what the replica persists."""
        if self.crashed:
            return Ready()
        return self._store(self.inner.step(src, msg))

    def tick(self, now: int) -> Ready:
        """Tick unless crashed."""
        if self.crashed:
            return Ready()
        return self._store(self.inner.tick(now))

    def crash(self) -> None:
        """Lose all volatile state; only :attr:`records` survive."""
        self.crashed = True

    def recover(self, now: int) -> Ready:
        """Rebuild the replica from its records; the returned Ready asks peers for the rest."""
        old = self.inner
        self.inner, ready = Replica.recover(
            old.node_id,
            old.config,
            old.keyring,
            self.records,
            validator=old.validator,
            service=old.service,
            block_format=old.chain.format,
            now=now,
        )
        self.crashed = False
        return self._store(ready)

    def _store(self, ready: Ready) -> Ready:
        self.records.extend(ready.persist)
        return ready


class SilentPrimary(Byzantine):
    """As primary, never sends PRE-PREPARE or NEW-VIEW."""

    def outgoing(self, send: Send) -> list[Send]:
        """Swallow the primary's proposals."""
        if isinstance(send.msg, (PrePrepare, NewView)):
            return []
        return [send]


class DroppingPrimary(Byzantine):
    """As primary, ignores every request of the clients in ``victims``."""

    def __init__(self, inner: Replica, victims: Iterable[int]) -> None:
        super().__init__(inner)
        self.victims = set(victims)

    def incoming(self, src: int, msg: Any) -> Any:
        """Drop the victims' requests while primary."""
        if isinstance(msg, Request) and msg.client in self.victims and self.inner.is_primary:
            return None
        return msg


class AlteringPrimary(Byzantine):
    """As primary, alters the first request of every batch (keeping the client's signature)."""

    def outgoing(self, send: Send) -> list[Send]:
        """Replace the batch's first request by a tampered copy and re-sign the pre-prepare."""
        pp = send.msg
        if not isinstance(pp, PrePrepare) or not pp.batch or not isinstance(pp.batch[0], Request):
            return [send]
        req = pp.batch[0]
        forged = Request(req.client, req.timestamp, req.operation + b"!", req.auth)
        batch = (forged, *pp.batch[1:])
        bad = PrePrepare(
            pp.view,
            pp.sequence,
            compute_batch_digest(pp.timestamp, batch),
            pp.timestamp,
            batch,
            pp.replica,
        )
        return [Send(send.dsts, _seal(self.inner.keyring, bad))]


def _restamped(pp: PrePrepare, timestamp: int) -> PrePrepare:
    """``pp``'s batch under another timestamp: a conflicting pre-prepare (another digest) for
    the same (view, sequence), unsigned."""
    digest = compute_batch_digest(timestamp, pp.batch)
    return PrePrepare(pp.view, pp.sequence, digest, timestamp, pp.batch, pp.replica)


class EquivocatingPrimary(Byzantine):
    """Sends the real pre-prepare to half of the backups and a conflicting one to the rest."""

    def outgoing(self, send: Send) -> list[Send]:
        """Split the destinations; the second half gets a different timestamp (and digest)."""
        pp = send.msg
        if not isinstance(pp, PrePrepare) or len(send.dsts) < 2:
            return [send]
        other = _restamped(pp, pp.timestamp + 1)
        half = len(send.dsts) // 2
        return [
            Send(send.dsts[:half], pp),
            Send(send.dsts[half:], _seal(self.inner.keyring, other)),
        ]


class LateEquivocator(Byzantine):
    """As primary, re-proposes a conflicting batch for one of its recent sequences every
    ``every`` ticks (same requests, another timestamp, so another digest)."""

    MEMORY = 32  # pre-prepares remembered (the log window of the tests is smaller)

    def __init__(self, inner: Replica, every: int = 3) -> None:
        super().__init__(inner)
        self.every = every
        self.proposed: dict[tuple[int, int], PrePrepare] = {}
        self.count = 0

    def outgoing(self, send: Send) -> list[Send]:
        """Remember the pre-prepares this primary sends, alone or inside a NEW-VIEW."""
        m = send.msg
        if isinstance(m, PrePrepare):
            self._remember(m)
        elif isinstance(m, NewView):
            for pp in m.pre_prepares:
                self._remember(pp)
        return [send]

    def _remember(self, pp: PrePrepare) -> None:
        self.proposed[(pp.view, pp.sequence)] = pp
        if len(self.proposed) > self.MEMORY:
            del self.proposed[min(self.proposed)]

    def tick(self, now: int) -> Ready:
        """Tick the replica; every ``every``-th tick, offer one conflicting pre-prepare."""
        ready = super().tick(now)
        self.count += 1
        inner = self.inner
        if self.count % self.every or not (inner.is_primary and inner.active):
            return ready
        stable = inner.checkpoints.stable
        live = [
            pp for (v, s), pp in sorted(self.proposed.items()) if v == inner.view and s > stable
        ]
        if live:
            pp = live[(self.count // self.every) % len(live)]
            other = _restamped(pp, pp.timestamp + 1 + self.count)
            ready.messages.append(Send(inner.others, _seal(inner.keyring, other)))
        return ready


class SkewedClockPrimary(Byzantine):
    """As primary, stamps every pre-prepare after the first ``honest`` with ``time + shift_us``
    (floored at 0): a positive shift dates batches into the future, a negative one runs the
    clock back before the previous batch."""

    def __init__(self, inner: Replica, shift_us: int, honest: int = 0) -> None:
        super().__init__(inner)
        self.shift_us = shift_us
        self.honest = honest
        self.sent = 0

    def outgoing(self, send: Send) -> list[Send]:
        """Re-date (and re-sign) the primary's own pre-prepares."""
        pp = send.msg
        if not isinstance(pp, PrePrepare) or pp.replica != self.node_id:
            return [send]
        self.sent += 1
        if self.sent <= self.honest:
            return [send]
        ts = max(0, pp.timestamp + self.shift_us)
        bad = PrePrepare(
            pp.view, pp.sequence, compute_batch_digest(ts, pp.batch), ts, pp.batch, pp.replica
        )
        return [Send(send.dsts, _seal(self.inner.keyring, bad))]


class PartialAuthenticator(Byzantine):
    """As primary, zeroes the MAC entries of the replicas in ``victims`` in every pre-prepare it
    sends (MAC authenticators only; a signature cannot be valid for some and not for others)."""

    def __init__(self, inner: Replica, victims: Iterable[int]) -> None:
        super().__init__(inner)
        self.victims = set(victims)

    def outgoing(self, send: Send) -> list[Send]:
        """Spoil the victims' entries of the primary's own pre-prepares."""
        pp = send.msg
        if not isinstance(pp, PrePrepare) or pp.replica != self.node_id:
            return [send]
        if type(pp.auth) is not tuple or len(pp.auth) != self.inner.n:
            return [send]
        auth = tuple(bytes(len(e)) if j in self.victims else e for j, e in enumerate(pp.auth))
        return [Send(send.dsts, pp.with_auth(auth))]


class BadVoter(Byzantine):
    """Sends PREPAREs and COMMITs with a wrong ``view``, ``sequence`` or ``digest`` field."""

    def __init__(self, inner: Replica, field: str = "digest") -> None:
        super().__init__(inner)
        if field not in ("view", "sequence", "digest"):
            raise ValueError(f"unknown field {field!r}")
        self.field = field

    def outgoing(self, send: Send) -> list[Send]:
        """Corrupt one field of every vote and re-sign it."""
        m = send.msg
        if not isinstance(m, (Prepare, Commit)):
            return [send]
        v, s, d = m.view, m.sequence, m.batch_digest
        if self.field == "view":
            v += 1
        elif self.field == "sequence":
            s += 1
        else:
            d = sha256(d)
        bad = type(m)(v, s, d, m.replica)
        return [Send(send.dsts, _seal(self.inner.keyring, bad))]


class Replayer(Byzantine):
    """Replays its own old messages, relays others' messages as its own, forges a peer's name."""

    def __init__(self, inner: Replica, every: int = 3) -> None:
        super().__init__(inner)
        self.every = every
        self.sent: list[Send] = []
        self.received: list[Any] = []
        self.count = 0

    def incoming(self, src: int, msg: Any) -> Any:
        """Remember what peers sent (to relay later)."""
        if len(self.received) < 64 and hasattr(msg, "replica"):
            self.received.append(msg)
        return msg

    def outgoing(self, send: Send) -> list[Send]:
        """Every ``every``-th send also replays an old message and a relayed/forged one."""
        self.count += 1
        out = [send]
        if len(self.sent) < 64:
            self.sent.append(send)
        if self.count % self.every == 0:
            old = self.sent[(self.count // self.every) % len(self.sent)]
            out.append(old)  # replay of an old, authentic message
            if self.received:
                relayed = self.received[(self.count // self.every) % len(self.received)]
                out.append(Send(send.dsts, relayed))  # someone else's message, sent by us
            m = send.msg
            if isinstance(m, (Prepare, Commit)):
                victim = (m.replica + 1) % self.inner.n
                forged = type(m)(m.view, m.sequence, m.batch_digest, victim, m.auth)
                out.append(Send(send.dsts, forged))  # another replica's name, our authenticator
        return out


class SplitBrain:
    """A coalition of f+1 faulty replicas (the primary of view 0 and f colluding backups).

    It turns the primary's pre-prepare into two conflicting ones, sends each to one half of the
    honest backups, and has every coalition member prepare and commit *both* digests, each to
    its half. With f+1 colluders each half reaches 2f+1 votes: the halves commit different
    batches at the same sequence number. Use one instance per coalition member, all sharing one
    ``outbox`` (each member sends its own messages, on its next tick).
    """

    def __init__(
        self,
        inner: Replica,
        coalition: Iterable[int],
        keyrings: dict[int, Keyring],
        outbox: dict[int, list[Send]],
    ) -> None:
        self.inner = inner
        self.outbox = outbox
        self.node_id = inner.node_id
        self.coalition = sorted(coalition)
        self.keyrings = keyrings
        n = inner.n
        honest = [r for r in range(n) if r not in self.coalition]
        half = len(honest) // 2
        self.groups = (tuple(honest[:half]), tuple(honest[half:]))

    def step(self, src: int, msg: Any) -> Ready:
        """The primary turns each incoming request into two conflicting batches."""
        ready = Ready()
        if self.node_id == self.coalition[0] and isinstance(msg, Request) and self.inner.is_primary:
            self._attack(msg, ready)
        return ready

    def tick(self, now: int) -> Ready:
        """The coalition acts only on requests."""
        self.inner.now = now
        return Ready(messages=self.outbox.pop(self.node_id, []))

    def _attack(self, req: Request, ready: Ready) -> None:
        inner = self.inner
        inner.next_sequence += 1
        s, v = inner.next_sequence, inner.view
        primary = self.coalition[0]
        for k, group in enumerate(self.groups):
            ts = inner.now + k
            batch = (req,)
            d = compute_batch_digest(ts, batch)
            pp = _seal(self.keyrings[primary], PrePrepare(v, s, d, ts, batch, primary))
            ready.messages.append(Send(group, pp))
            for member in self.coalition:
                box = (
                    ready.messages if member == self.node_id else self.outbox.setdefault(member, [])
                )
                if member != primary:
                    box.append(Send(group, _seal(self.keyrings[member], Prepare(v, s, d, member))))
                box.append(Send(group, _seal(self.keyrings[member], Commit(v, s, d, member))))
