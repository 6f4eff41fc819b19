"""Proof of information as ModelChain (Kuo, Hsu, Ohno-Machado) describes it: PoW + online learning.

Theory of operation
-------------------
ModelChain runs proof of work on a private network of hospital sites and uses the blocks to carry
an online, privacy-preserving predictive model: a site's data never leaves it, only model updates
do. medbench's rules (a documented reading of the proposal, docs/medical-chain.md §1.8):

1. Mining is :class:`medbench.consensus.baselines.pow.PowNode`'s (same discovery, fork choice,
   rewards and depth-k commits).
2. A block's payload is a model update: logistic-regression weights after ``local_steps``
   full-batch gradient steps, started from the parent block's weights, on the miner's local data
   (a seeded synthetic cohort, ``local_samples`` x ``features``). Weights travel as fixed-point
   integers (scale ``2**24``) because the canonical encoding carries no floats.
3. Every validator checks the update before accepting the block: its dimension, and that the
   log-loss on the consortium's validation set is not worse than the parent's by more than
   ``tolerance``. A poisoned update (``poison=True`` nodes push the weights the wrong way) fails
   this check and the block is rejected with reason ``update_degrades_loss``.
4. Compute = hashing + learning: the node counts hash evaluations like PoW and the floating-point
   operations of training (``train_flops``: ``4md + 5m + 2d`` per step) and validation
   (``validate_flops``: ``2vd + 7v`` per loss evaluation; parent losses are cached).

The arithmetic of the model sits behind :class:`Learner`, injected per node by the driver's side
(:class:`medbench.experiments.learning.LogisticTask`, on numpy), so this module, like every
consensus module, loads no numerical library: it checks the shape and range of the fixed-point
weights a peer sent, keeps the counts and applies the acceptance rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

from medbench import codec
from medbench.consensus.baselines.chain import Entry
from medbench.consensus.baselines.common import Rejected, Rng
from medbench.consensus.baselines.pow import PowBlock, PowNode, PowParams

SCALE = float(1 << 24)
MAX_FEATURES = 1024


@dataclass(frozen=True, slots=True)
class PoiParams:
    """Learning parameters of a PoI network (mining parameters are :class:`PowParams`)."""

    features: int = 10
    local_samples: int = 200
    validation_samples: int = 500
    learning_rate: float = 0.5
    local_steps: int = 1
    tolerance: float = 1e-3
    poison: tuple[int, ...] = ()  # node IDs that publish poisoned updates

    @classmethod
    def split(cls, params: dict[str, Any], n: int) -> tuple[PoiParams, PowParams]:
        """Separate a flat parameter dict into learning and mining parameters."""
        mine = {f.name for f in fields(cls)}
        learn = {k: v for k, v in params.items() if k in mine}
        if "poison" in learn:
            learn["poison"] = tuple(int(x) for x in learn["poison"])
        rest = {k: v for k, v in params.items() if k not in mine}
        return cls(**learn), PowParams.from_dict(rest, n)


Weights = tuple[int, ...]
"""A model as it travels in a block: ``features`` fixed-point integers (value x ``2**24``)."""


class Learner(Protocol):
    """One site's learning task: its local data and the consortium's validation set."""

    def validation_loss(self, weights: Weights) -> float:
        """Mean log-loss of ``weights`` on the consortium's validation set."""
        ...

    def train(self, weights: Weights, steps: int, learning_rate: float, poisoned: bool) -> Weights:
        """``steps`` full-batch gradient steps on the local data, from ``weights``.

        A ``poisoned`` site ascends the loss instead (the update validators must refuse).
        """
        ...


LearnerFactory = Callable[[int, "PoiParams"], Learner]
"""``factory(node_id, params)``: the learning task of one site (seeded by the driver's side)."""


def encode_weights(w: Weights) -> bytes:
    """Canonical bytes of a fixed-point weight vector."""
    return codec.encode(list(w))


def decode_weights(payload: bytes, d: int) -> Weights:
    """Weights from a payload; raises :class:`Rejected` if it is not ``d`` fixed-point integers."""
    try:
        value = codec.decode(payload)
    except codec.DecodeError:
        raise Rejected("bad_update", "undecodable") from None
    if type(value) is not list or len(value) != d or any(type(v) is not int for v in value):
        raise Rejected("bad_update", "shape")
    if any(abs(v) > (1 << 62) for v in value):
        raise Rejected("bad_update", "range")
    return tuple(value)


class PoiNode(PowNode):
    """A ModelChain site: a PoW miner whose blocks carry checked logistic-regression updates."""

    GENESIS_LABEL: ClassVar[bytes] = b"medbench-poi-genesis"

    def __init__(
        self,
        node_id: int,
        n: int,
        params: PowParams,
        learn: PoiParams,
        rng: Rng,
        learner: Learner,
    ) -> None:
        super().__init__(node_id, n, params, rng)
        if not 1 <= learn.features <= MAX_FEATURES:
            raise ValueError("features out of range")
        self.learn = learn
        self.learner = learner
        self.poisoned = node_id in learn.poison
        self.loss_cache: dict[bytes, float] = {}
        self.updates_checked = 0
        self.updates_rejected = 0

    # --- learning

    def weights_of(self, entry: Entry) -> Weights:
        """Model weights after ``entry`` (zeros at genesis)."""
        if entry.block is None:
            return (0,) * self.learn.features
        return decode_weights(entry.block.payload, self.learn.features)

    def _loss(self, w: Weights) -> float:
        v, d = self.learn.validation_samples, self.learn.features
        self.counters.validate_flops += 2 * v * d + 7 * v
        return self.learner.validation_loss(w)

    def loss_of(self, entry: Entry) -> float:
        """Validation loss of the model after ``entry`` (cached per block)."""
        cached = self.loss_cache.get(entry.block_id)
        if cached is None:
            cached = self._loss(self.weights_of(entry))
            self.loss_cache[entry.block_id] = cached
        return cached

    def make_payload(self, parent: Entry) -> bytes:
        """``local_steps`` gradient steps from the parent's weights on local data."""
        learn = self.learn
        m, d = learn.local_samples, learn.features
        w = self.learner.train(
            self.weights_of(parent), learn.local_steps, learn.learning_rate, self.poisoned
        )
        self.counters.train_flops += learn.local_steps * (4 * m * d + 5 * m + 2 * d)
        return encode_weights(w)

    def check_payload(self, parent: Entry, block: PowBlock) -> None:
        """The update must decode and must not raise the validation loss beyond ``tolerance``."""
        self.updates_checked += 1
        w = decode_weights(block.payload, self.learn.features)
        before = self.loss_of(parent)
        after = self._loss(w)
        if not math.isfinite(after) or after > before + self.learn.tolerance:
            self.updates_rejected += 1
            raise Rejected("update_degrades_loss", (round(before, 6), round(after, 6)))

    def head_loss(self) -> float:
        """Validation loss of the model at the head of the main chain (not counted)."""
        return self.learner.validation_loss(self.weights_of(self.tree.head))

    def stats(self) -> dict[str, int]:
        """PoW figures plus update checks and the head model's loss (in micro-units)."""
        out = super().stats()
        out.update(
            updates_checked=self.updates_checked,
            updates_rejected=self.updates_rejected,
            head_loss_micro=int(self.head_loss() * 1e6),
        )
        return out
