"""Proof of information as ModelChain (Kuo, Hsu, Ohno-Machado) describes it: PoW + online learning.

Theory of operation
-------------------
ModelChain runs proof of work on a private network of hospital sites and uses the blocks to carry
an online, privacy-preserving predictive model: a site's data never leaves it, only model updates
do. medbench's rules (a documented reading of the proposal, PAPER.md §1.8):

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
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np

from medbench import codec
from medbench.consensus.baselines.chain import Entry
from medbench.consensus.baselines.common import Rejected, Rng, make_rng
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


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, numerically safe for large |z|."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def log_loss(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """Mean logistic loss of weights ``w`` on ``(x, y)``."""
    p = np.clip(sigmoid(x @ w), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def cohort(rng: np.random.Generator, w_true: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """``m`` synthetic patients: standard-normal features, outcome ~ Bernoulli(sigmoid(x.w))."""
    x = rng.standard_normal((m, w_true.size))
    y = (rng.random(m) < sigmoid(x @ w_true)).astype(np.float64)
    return x, y


def encode_weights(w: np.ndarray) -> bytes:
    """Fixed-point canonical bytes of a weight vector."""
    return codec.encode([int(v) for v in np.round(w * SCALE).astype(np.int64)])


def decode_weights(payload: bytes, d: int) -> np.ndarray:
    """Weights from a payload; raises :class:`Rejected` if it is not ``d`` fixed-point integers."""
    try:
        value = codec.decode(payload)
    except codec.DecodeError:
        raise Rejected("bad_update", "undecodable") from None
    if type(value) is not list or len(value) != d or any(type(v) is not int for v in value):
        raise Rejected("bad_update", "shape")
    if any(abs(v) > (1 << 62) for v in value):
        raise Rejected("bad_update", "range")
    return np.asarray(value, dtype=np.float64) / SCALE


class PoiNode(PowNode):
    """A ModelChain site: a PoW miner whose blocks carry checked logistic-regression updates."""

    GENESIS_LABEL: ClassVar[bytes] = b"medbench-poi-genesis"

    def __init__(
        self, node_id: int, n: int, params: PowParams, learn: PoiParams, rng: Rng, seed: int
    ) -> None:
        super().__init__(node_id, n, params, rng)
        if not 1 <= learn.features <= MAX_FEATURES:
            raise ValueError("features out of range")
        self.learn = learn
        self.poisoned = node_id in learn.poison
        shared = make_rng(seed, 0x504F49)  # the consortium's model task and validation set
        self.w_true = shared.standard_normal(learn.features)
        self.x_val, self.y_val = cohort(shared, self.w_true, learn.validation_samples)
        self.x, self.y = cohort(
            make_rng(seed, 0x504F49, node_id + 1), self.w_true, learn.local_samples
        )
        self.loss_cache: dict[bytes, float] = {}
        self.updates_checked = 0
        self.updates_rejected = 0

    # --- learning

    def weights_of(self, entry: Entry) -> np.ndarray:
        """Model weights after ``entry`` (zeros at genesis)."""
        if entry.block is None:
            return np.zeros(self.learn.features)
        return decode_weights(entry.block.payload, self.learn.features)

    def _loss(self, w: np.ndarray) -> float:
        v, d = self.x_val.shape
        self.counters.validate_flops += 2 * v * d + 7 * v
        return log_loss(w, self.x_val, self.y_val)

    def loss_of(self, entry: Entry) -> float:
        """Validation loss of the model after ``entry`` (cached per block)."""
        cached = self.loss_cache.get(entry.block_id)
        if cached is None:
            cached = self._loss(self.weights_of(entry))
            self.loss_cache[entry.block_id] = cached
        return cached

    def make_payload(self, parent: Entry) -> bytes:
        """``local_steps`` gradient steps from the parent's weights on local data."""
        w = self.weights_of(parent)
        m, d = self.x.shape
        for _ in range(self.learn.local_steps):
            grad = self.x.T @ (sigmoid(self.x @ w) - self.y) / m
            if self.poisoned:
                grad = -25.0 * grad - 1.0  # ascend the loss: a poisoned update
            w = w - self.learn.learning_rate * grad
            self.counters.train_flops += 4 * m * d + 5 * m + 2 * d
        return encode_weights(w)

    def check_payload(self, parent: Entry, block: PowBlock) -> None:
        """The update must decode and must not raise the validation loss beyond ``tolerance``."""
        self.updates_checked += 1
        w = decode_weights(block.payload, self.learn.features)
        before = self.loss_of(parent)
        after = self._loss(w)
        if not np.isfinite(after) or after > before + self.learn.tolerance:
            self.updates_rejected += 1
            raise Rejected("update_degrades_loss", (round(before, 6), round(after, 6)))

    def head_loss(self) -> float:
        """Validation loss of the model at the head of the main chain (not counted)."""
        return log_loss(self.weights_of(self.tree.head), self.x_val, self.y_val)

    def stats(self) -> dict[str, int]:
        """PoW figures plus update checks and the head model's loss (in micro-units)."""
        out = super().stats()
        out.update(
            updates_checked=self.updates_checked,
            updates_rejected=self.updates_rejected,
            head_loss_micro=int(self.head_loss() * 1e6),
        )
        return out
