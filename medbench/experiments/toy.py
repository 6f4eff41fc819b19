"""``toy-quorum``: a small all-to-all quorum protocol to exercise the simulator and the runner.

Theory of operation
-------------------
Not a Byzantine-fault-tolerant protocol: a crash-free reference whose message counts are easy to
predict, so tests of the driver, the metrics and the sweep runner need not wait for PBFT.

* The client (node ``n``) receives a local :class:`Submit`, signs a :class:`Request` and sends it
  to the leader (replica 0). Requests still open after ``retry_us`` are resent (on ticks).
* The leader gives each new transaction the next sequence number and sends :class:`Propose` to
  the other replicas (n - 1 messages) and handles its own copy locally.
* Every replica, on a proposal, hashes it, signs and sends :class:`Echo` to the other replicas
  (n(n - 1) messages in all); echoes are verified.
* A replica holding the proposal and ``2f + 1`` echoes (its own included) commits the sequence
  number (in order), persists it and sends :class:`Reply` to the client (n messages).
* The client completes a transaction on ``f + 1`` replies from distinct replicas.

With ``crypto="real"`` requests and echoes carry Ed25519 signatures that are checked; with
``"modeled"`` they carry a 64-byte model of a signature, HMAC-SHA512 under the signer's secret
seed, which is checked the same way (a forged or tampered message is rejected in both modes);
the counted operations and the message sizes are the same, only wall time differs.
Proposals and replies carry 64-byte placeholders in both modes (counted, not checked).

So one transaction costs ``1 + (n - 1) + n(n - 1) + n`` messages. Operations are counted through
``take_costs`` (:class:`medbench.sim.costs.OpCounter`). Bad input (a wrong type, an unknown sender,
a proposal not from the leader) is dropped and counted in ``rejected``, never raised.
"""

from __future__ import annotations

import hmac
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey

from medbench import codec
from medbench.experiments import load, size
from medbench.experiments.params import RunParams, param
from medbench.experiments.runner import Deployment, Submission
from medbench.node import Committed, Note, Ready, Send
from medbench.quorum import max_faulty, strong_quorum
from medbench.sim.costs import OpCounter

LEADER = 0


@dataclass(frozen=True, slots=True)
class Submit:
    """Local input of the client: submit transaction ``tx`` with ``payload``."""

    tx: int
    payload: bytes
    kind = "submit"

    def encode(self) -> bytes:
        """Canonical bytes."""
        return codec.encode(("submit", self.tx, self.payload))


ZERO_SIG = b"\0" * 64


class Keys:
    """Ed25519 keys of every node, real or modeled (a simulation convenience: one object holds
    all private keys, and each node signs only with its own).

    Modeled keys tag with HMAC-SHA512 under the node's seed (64 bytes, like an Ed25519
    signature) and check the tag, so messages have the same size in both modes, forgeries fail
    in both, and only wall time differs.
    """

    def __init__(self, seeds: list[bytes], real: bool) -> None:
        self.real = real
        self._seeds = list(seeds)
        self._signing = [SigningKey(s) for s in seeds] if real else []
        self._verify = [k.verify_key for k in self._signing]

    def sign(self, who: int, data: bytes) -> bytes:
        """``who``'s signature over ``data`` (its model: an HMAC tag, when not real)."""
        if self.real:
            return self._signing[who].sign(data).signature
        if not 0 <= who < len(self._seeds):
            return ZERO_SIG  # a node without a seed (tests build nodes bare): an invalid tag
        return hmac.digest(self._seeds[who], data, "sha512")

    def verify(self, who: int, data: bytes, sig: bytes) -> bool:
        """True when ``sig`` is ``who``'s signature over ``data``."""
        if type(sig) is not bytes or type(data) is not bytes or type(who) is not int:
            return False
        if not self.real:
            if not 0 <= who < len(self._seeds):
                return False
            return hmac.compare_digest(hmac.digest(self._seeds[who], data, "sha512"), sig)
        if not 0 <= who < len(self._verify):
            return False
        try:
            self._verify[who].verify(data, sig)
        except (BadSignatureError, ValueError, TypeError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class Request:
    """Client -> leader: please order ``tx`` (signed by the client)."""

    tx: int
    payload: bytes
    sig: bytes = ZERO_SIG
    kind = "request"

    def signed_bytes(self) -> bytes:
        """What the client signs."""
        return codec.encode(("request", self.tx, self.payload))

    def encode(self) -> bytes:
        """Canonical bytes."""
        return codec.encode(("request", self.tx, self.payload, self.sig))


@dataclass(frozen=True, slots=True)
class Propose:
    """Leader -> replicas: ``tx`` has sequence number ``seq``."""

    seq: int
    tx: int
    payload: bytes
    kind = "propose"

    def encode(self) -> bytes:
        """Canonical bytes."""
        return codec.encode(("propose", self.seq, self.tx, self.payload, b"\0" * 64))


@dataclass(frozen=True, slots=True)
class Echo:
    """Replica ``sender`` -> replicas: I saw proposal ``seq`` for ``tx`` (signed)."""

    seq: int
    tx: int
    sender: int = 0
    sig: bytes = ZERO_SIG
    kind = "echo"

    def signed_bytes(self) -> bytes:
        """What the sender signs."""
        return codec.encode(("echo", self.seq, self.tx, self.sender))

    def encode(self) -> bytes:
        """Canonical bytes."""
        return codec.encode(("echo", self.seq, self.tx, self.sender, self.sig))


@dataclass(frozen=True, slots=True)
class Reply:
    """Replica -> client: ``tx`` committed at ``seq``."""

    seq: int
    tx: int
    kind = "reply"

    def encode(self) -> bytes:
        """Canonical bytes."""
        return codec.encode(("reply", self.seq, self.tx, b"\0" * 64))


class Replica:
    """A toy-quorum replica (see the module docstring)."""

    def __init__(
        self,
        node_id: int,
        n: int,
        client: int,
        log: list[bytes] | None = None,
        keys: Keys | None = None,
    ) -> None:
        self.node_id = node_id
        self.keys = keys if keys is not None else Keys([], real=False)
        self.n = n
        self.client = client
        self.quorum = strong_quorum(n)
        self.others = tuple(r for r in range(n) if r != node_id)
        self.next_seq = 0
        self.seen_tx: set[int] = set()
        self.proposals: dict[int, Propose] = {}
        self.echoes: dict[int, set[int]] = {}
        self.committed_upto = 0
        self.rejected = 0
        self.ops = OpCounter()
        for blob in log or []:
            seq, _tx = codec.decode(blob)
            self.committed_upto = max(self.committed_upto, seq + 1)

    def take_costs(self) -> dict[str, int]:
        """Operation counts since the last call."""
        return self.ops.take()

    def tick(self, now: int) -> Ready:
        """Replicas have no timers."""
        return Ready()

    def step(self, src: int, msg: Any) -> Ready:
        """Handle one message."""
        ready = Ready()
        if not 0 <= src <= self.n:
            return self._reject(ready, "unknown sender")
        t = type(msg)
        if t is Request and self.node_id == LEADER and src == self.client:
            self.ops.add("verify")
            if not self.keys.verify(self.client, msg.signed_bytes(), msg.sig):
                return self._reject(ready, "bad request signature")
            if msg.tx in self.seen_tx:
                return ready
            self.seen_tx.add(msg.tx)
            prop = Propose(self.next_seq, msg.tx, msg.payload)
            self.next_seq += 1
            self.ops.add("sign")
            ready.messages.append(Send(self.others, prop))
            self._on_propose(prop, ready)
        elif t is Propose and src == LEADER and src != self.node_id:
            self.ops.add("verify")
            self._on_propose(msg, ready)
        elif t is Echo and src < self.n and src != self.node_id:
            self.ops.add("verify")
            if msg.sender != src or not self.keys.verify(src, msg.signed_bytes(), msg.sig):
                return self._reject(ready, "bad echo signature")
            self.echoes.setdefault(msg.seq, set()).add(src)
            self._maybe_commit(ready)
        else:
            return self._reject(ready, f"unexpected {getattr(msg, 'kind', t.__name__)}")
        return ready

    def _reject(self, ready: Ready, reason: str) -> Ready:
        self.rejected += 1
        ready.notes.append(Note("rejected", reason))
        return ready

    def _on_propose(self, prop: Propose, ready: Ready) -> None:
        if prop.seq in self.proposals or prop.seq < self.committed_upto:
            return
        self.proposals[prop.seq] = prop
        self.ops.add("hash")
        self.ops.add("hash_bytes", len(prop.payload))
        self.ops.add("sign")
        self.echoes.setdefault(prop.seq, set()).add(self.node_id)
        echo = Echo(prop.seq, prop.tx, self.node_id)
        echo = Echo(
            prop.seq, prop.tx, self.node_id, self.keys.sign(self.node_id, echo.signed_bytes())
        )
        ready.messages.append(Send(self.others, echo))
        self._maybe_commit(ready)

    def _maybe_commit(self, ready: Ready) -> None:
        while True:
            seq = self.committed_upto
            prop = self.proposals.get(seq)
            if prop is None or len(self.echoes.get(seq, ())) < self.quorum:
                return
            self.committed_upto += 1
            ready.persist.append(codec.encode((seq, prop.tx)))
            ready.committed.append(Committed(seq, prop.tx))
            self.ops.add("sign")
            ready.messages.append(Send((self.client,), Reply(seq, prop.tx)))


class Client:
    """The toy-quorum client: one node submitting every transaction (see the module docstring)."""

    def __init__(self, node_id: int, n: int, retry_us: int, keys: Keys | None = None) -> None:
        self.node_id = node_id
        self.keys = keys if keys is not None else Keys([], real=False)
        self.n = n
        self.f = max_faulty(n)
        self.retry_us = retry_us
        self.now = 0
        self.open: dict[int, tuple[int, Request]] = {}
        self.replies: dict[int, set[int]] = {}
        self.done: set[int] = set()
        self.ops = OpCounter()

    def take_costs(self) -> dict[str, int]:
        """Operation counts since the last call."""
        return self.ops.take()

    def tick(self, now: int) -> Ready:
        """Resend requests open for longer than ``retry_us``."""
        self.now = now
        ready = Ready()
        for tx, (sent, req) in list(self.open.items()):
            if now - sent >= self.retry_us:
                self.open[tx] = (now, req)
                ready.messages.append(Send((LEADER,), req))
        return ready

    def step(self, src: int, msg: Any) -> Ready:
        """Handle a local :class:`Submit` or a :class:`Reply`."""
        ready = Ready()
        t = type(msg)
        if t is Submit and src == self.node_id:
            req = Request(msg.tx, msg.payload)
            req = Request(msg.tx, msg.payload, self.keys.sign(self.node_id, req.signed_bytes()))
            self.ops.add("sign")
            self.open[msg.tx] = (self.now, req)
            ready.messages.append(Send((LEADER,), req))
        elif t is Reply and 0 <= src < self.n:
            self.ops.add("verify")
            if msg.tx in self.done:
                return ready
            got = self.replies.setdefault(msg.tx, set())
            got.add(src)
            if len(got) >= self.f + 1:
                self.done.add(msg.tx)
                self.open.pop(msg.tx, None)
                ready.completed.append(msg.tx)
        else:
            ready.notes.append(Note("rejected", f"unexpected {t.__name__}"))
        return ready


def messages_per_tx(n: int) -> int:
    """Messages one transaction costs: request, proposals, echoes, replies."""
    return 1 + (n - 1) + n * (n - 1) + n


class ToyParams(RunParams):
    """The parameters of a ``toy-quorum`` run."""

    retry_us: int = param(500_000, "the client resends a request open this long", ge=1)

    @classmethod
    def estimate(cls, p: Mapping[str, Any]) -> dict[str, float]:
        """Exact messages (:func:`messages_per_tx`) and the generic memory model."""
        return size.toy(p)


PARAMS = ToyParams
"""The schema :func:`medbench.experiments.params.schema_for` finds for ``toy-quorum``."""


def build(params: Mapping[str, Any], rng: random.Random) -> Deployment:
    """The toy-quorum deployment: ``n`` replicas + 1 client node at replica 0's site.

    Parameters (:class:`ToyParams`): ``n``, the common workload of
    :mod:`medbench.experiments.load` (every client stream goes through the one client node),
    ``retry_us`` (default 500000), ``crypto`` (``"modeled"`` or ``"real"`` Ed25519).
    """
    p = ToyParams.resolve({"protocol": "toy-quorum", **params}, "toy-quorum")
    n = int(p["n"])
    w = load.workload(p)
    retry = int(p["retry_us"])
    client = n
    # Key seeds are drawn in both modes so the workload below is the same random stream.
    keys = Keys([rng.randbytes(32) for _ in range(n + 1)], real=p["crypto"] == "real")
    nodes: list[Any] = [Replica(i, n, client, keys=keys) for i in range(n)]
    nodes.append(Client(client, n, retry, keys))
    subs = []
    for a in load.arrivals(w, rng):
        payload = rng.randbytes(w.payload_bytes)
        subs.append(Submission(a.at_us, client, Submit(a.index, payload), a.index, a.after))

    def recover(node_id: int, persisted: list[Any]) -> Any:
        if node_id == client:
            return Client(client, n, retry, keys)
        return Replica(node_id, n, client, persisted, keys)

    return Deployment(
        nodes=nodes,
        submissions=subs,
        replicas=tuple(range(n)),
        sites=[*range(n), 0],
        recover=recover,
        params=p,
    )
