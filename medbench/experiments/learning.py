"""ModelChain's learning task on numpy: the :class:`~medbench.consensus.baselines.poi.Learner`
the simulator gives each PoI site.

Theory of operation
-------------------
The consortium shares one prediction task: a logistic model with true weights ``w_true`` (standard
normal, ``features`` of them). Each site holds ``local_samples`` synthetic patients (standard-normal
features, outcome ~ Bernoulli(sigmoid(x . w_true))); every site holds the same
``validation_samples`` validation set. Everything is drawn from the run's seed:
``default_rng([seed, 0x504F49])`` for the task and validation set, ``default_rng([seed, 0x504F49,
node_id + 1])`` for a site's local data, so all sites agree on the task and differ in their data.

Weights travel as fixed-point integers (scale ``2**24``, :data:`~medbench.consensus.baselines.poi.
SCALE`); this module converts at its boundary, so a model rounds the same way at every site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medbench.consensus.baselines.poi import SCALE, PoiParams, Weights
from medbench.experiments.streams import make_rng

TASK_LABEL = 0x504F49  # "POI"


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


def to_float(w: Weights) -> np.ndarray:
    """Fixed-point weights as floats."""
    return np.asarray(w, dtype=np.float64) / SCALE


def to_fixed(w: np.ndarray) -> Weights:
    """Float weights rounded to fixed point."""
    return tuple(int(v) for v in np.round(w * SCALE).astype(np.int64))


@dataclass(slots=True)
class LogisticTask:
    """One site's data and the shared validation set (see the module docstring)."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @classmethod
    def for_site(cls, seed: int, node_id: int, params: PoiParams) -> LogisticTask:
        """The task of site ``node_id`` in the run seeded ``seed``."""
        shared = make_rng(seed, TASK_LABEL)
        w_true = shared.standard_normal(params.features)
        x_val, y_val = cohort(shared, w_true, params.validation_samples)
        x, y = cohort(make_rng(seed, TASK_LABEL, node_id + 1), w_true, params.local_samples)
        return cls(x, y, x_val, y_val)

    def validation_loss(self, weights: Weights) -> float:
        """Mean log-loss of ``weights`` on the validation set."""
        return log_loss(to_float(weights), self.x_val, self.y_val)

    def train(self, weights: Weights, steps: int, learning_rate: float, poisoned: bool) -> Weights:
        """``steps`` full-batch gradient steps on the local data (ascending if ``poisoned``)."""
        w = to_float(weights)
        m = self.x.shape[0]
        for _ in range(steps):
            grad = self.x.T @ (sigmoid(self.x @ w) - self.y) / m
            if poisoned:
                grad = -25.0 * grad - 1.0  # ascend the loss: a poisoned update
            w = w - learning_rate * grad
        return to_fixed(w)


__all__ = ["LogisticTask", "cohort", "log_loss", "sigmoid"]
