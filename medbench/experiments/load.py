"""One workload vocabulary for every protocol: clients, requests, offered rate, payload, load shape.

Theory of operation
-------------------
Every protocol adapter (PBFT, the baselines, toy-quorum, and any protocol registered later) reads
its workload from the same parameters, with the same defaults, so a default cross-protocol sweep
offers every system the same load. :class:`Workload` declares them (the pydantic model every
protocol's parameter schema includes, :mod:`medbench.experiments.params`):

==================  =========  ===========  =====================================================
name                default    unit         meaning
==================  =========  ===========  =====================================================
``clients``         4          clients      request streams; request ``i`` belongs to stream
                                            ``i mod clients`` (round-robin)
``requests``        100        requests     requests in the run, over all clients
``rate_tps``        50.0       tx/s         offered rate over all clients (0 with ``constant``:
                                            unpaced, every request at ``start_us``)
``payload_bytes``   200        bytes        size of each request's operation
``load``            constant   --           the load shape (below)
``outstanding``     1          requests     ``closed``: requests each client keeps in flight
``think_us``        0          us           ``closed``: pause between an answer and the next
``ramp_to_tps``     100.0      tx/s         ``ramp``: the rate reached by the last request
``burst_size``      10         requests     ``burst``: requests offered at the same instant
``start_us``        0          us           time of the first request
==================  =========  ===========  =====================================================

The defaults are the common workload of the Table 1 study (:mod:`medbench.study`: 50 tx/s of
200-byte transactions) with PBFT's former client count and request count.

Load shapes (Hyperledger Caliper's rate controllers are the model):

* ``constant`` -- fixed gaps of ``1/rate_tps`` (Caliper ``fixed-rate``); request ``i`` at
  ``start_us + int(i * gap)``;
* ``poisson`` -- exponential gaps of mean ``1/rate_tps`` drawn from a stream seeded by the run's
  seed (an open system with Poisson arrivals);
* ``ramp`` -- the rate rises (or falls) linearly from ``rate_tps`` at the first request to
  ``ramp_to_tps`` at the last (Caliper ``linear-rate``);
* ``burst`` -- groups of ``burst_size`` requests offered at one instant, groups spaced so that
  the mean rate is ``rate_tps``;
* ``closed`` -- a closed loop: each client keeps ``outstanding`` requests in flight; its next
  request leaves ``think_us`` after one of them completes (Caliper ``fixed-load``, per client).
  ``rate_tps`` is not used. Latency is counted from the moment a request leaves.

What a *client* is depends on the protocol (each adapter's docstring says so): a PBFT client
node (which itself orders one request at a time, so ``outstanding`` above 1 queues at the
client), one of the first ``clients`` nodes that accept transactions in a baseline, one
stream through toy-quorum's single client node.

Deprecated names, still accepted (see :data:`ALIASES`): ``txs`` (use ``requests``),
``tx_bytes`` (use ``payload_bytes``), ``interval_us`` (use ``rate_tps = 1e6 / interval_us``;
0 means unpaced) and toy-quorum's ``poisson = true`` (use ``load = "poisson"``).

:func:`arrivals` turns a resolved workload into the schedule every adapter follows; it draws
randomness only for ``poisson`` (from a stream it derives from the adapter's generator), so the
other shapes leave an adapter's random stream untouched.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

LOAD_SHAPES: tuple[str, ...] = ("constant", "poisson", "ramp", "burst", "closed")
"""The load shapes of the ``load`` parameter (see the module docstring)."""

LoadShape = Literal["constant", "poisson", "ramp", "burst", "closed"]


def _unit(unit: str) -> dict[str, Any]:
    return {"unit": unit}


class Workload(BaseModel):
    """The workload parameters every protocol shares (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)

    clients: int = Field(
        default=4, ge=1, description="request streams (clients); requests dealt round-robin",
        json_schema_extra=_unit("clients"),
    )  # fmt: skip
    requests: int = Field(
        default=100, ge=0, description="requests in the run, over all clients",
        json_schema_extra=_unit("requests"),
    )  # fmt: skip
    rate_tps: float = Field(
        default=50.0, ge=0, allow_inf_nan=False,
        description="offered rate over all clients (constant: 0 = all at start_us; "
        "closed: unused)",
        json_schema_extra=_unit("tx/s"),
    )  # fmt: skip
    payload_bytes: int = Field(
        default=200, ge=0, description="size of each request's operation",
        json_schema_extra=_unit("bytes"),
    )  # fmt: skip
    load: LoadShape = Field(
        default="constant", description="load shape: constant | poisson | ramp | burst | closed",
    )  # fmt: skip
    outstanding: int = Field(
        default=1, ge=1, description="closed: requests each client keeps in flight",
        json_schema_extra=_unit("requests"),
    )  # fmt: skip
    think_us: int = Field(
        default=0, ge=0, description="closed: pause from an answer to the client's next request",
        json_schema_extra=_unit("us"),
    )  # fmt: skip
    ramp_to_tps: float = Field(
        default=100.0, gt=0, allow_inf_nan=False,
        description="ramp: rate reached by the last request (from rate_tps at the first)",
        json_schema_extra=_unit("tx/s"),
    )  # fmt: skip
    burst_size: int = Field(
        default=10, ge=1, description="burst: requests offered at the same instant",
        json_schema_extra=_unit("requests"),
    )  # fmt: skip
    start_us: int = Field(
        default=0, ge=0, description="time of the first request", json_schema_extra=_unit("us")
    )

    @model_validator(mode="after")
    def _shape_needs_a_rate(self) -> Workload:
        if self.load in ("poisson", "ramp", "burst") and self.rate_tps <= 0:
            raise ValueError(f"load={self.load} needs rate_tps > 0")
        return self


WORKLOAD_FIELDS: tuple[str, ...] = tuple(Workload.model_fields)
"""Names of the workload parameters."""

WORKLOAD_DEFAULTS: dict[str, Any] = Workload().model_dump()
"""The workload defaults, shared by every protocol."""

ALIASES: dict[str, str] = {
    "txs": "requests",
    "tx_bytes": "payload_bytes",
    "interval_us": "rate_tps",
    "poisson": "load",
}
"""Deprecated workload names -> the name that replaces them (see :func:`translate_alias`)."""


def translate_alias(name: str, value: Any) -> tuple[str, Any]:
    """A deprecated workload parameter as its replacement: ``("txs", 5)`` -> ``("requests", 5)``.

    ``interval_us`` becomes ``rate_tps = 1e6 / interval_us`` (0 stays 0: unpaced); toy-quorum's
    ``poisson`` becomes ``load = "poisson"`` when true and ``"constant"`` when false.
    """
    new = ALIASES[name]
    if name == "interval_us":
        try:
            gap = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"interval_us must be a number, not {value!r}") from None
        if gap < 0:
            raise ValueError("interval_us must be non-negative")
        return new, (1e6 / gap if gap > 0 else 0.0)
    if name == "poisson":
        flag = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        return new, ("poisson" if flag else "constant")
    return new, value


@dataclass(frozen=True, slots=True)
class Arrival:
    """Request ``index`` of client stream ``client``.

    ``after`` is ``None`` for an open load: the request leaves at ``at_us``. In a closed loop,
    ``after`` is the index of the request whose completion releases this one and ``at_us`` the
    think time after it (see :meth:`medbench.sim.engine.Simulator.submit_after`).
    """

    index: int
    client: int
    at_us: int
    after: int | None = None


def workload(params: Mapping[str, Any]) -> Workload:
    """The :class:`Workload` of a resolved parameter dict (other keys are ignored)."""
    return Workload(**{k: params[k] for k in WORKLOAD_FIELDS if k in params})


def arrivals(w: Workload | Mapping[str, Any], rng: random.Random) -> list[Arrival]:
    """The schedule of every request of ``w`` (see the module docstring for the shapes).

    ``rng`` is consulted only by ``poisson`` (one 64-bit draw seeds the arrival stream).
    """
    if not isinstance(w, Workload):
        w = workload(w)
    count, k, start = w.requests, w.clients, w.start_us
    out: list[Arrival] = []
    if w.load == "closed":
        window = w.outstanding * k
        for i in range(count):
            if i < window:
                out.append(Arrival(i, i % k, start))
            else:
                out.append(Arrival(i, i % k, w.think_us, after=i - window))
        return out
    if w.load == "constant":
        gap = round(1e6 / w.rate_tps, 6) if w.rate_tps > 0 else 0.0
        return [Arrival(i, i % k, start + int(i * gap)) for i in range(count)]
    if w.load == "burst":
        period = w.burst_size * 1e6 / w.rate_tps
        return [Arrival(i, i % k, start + int((i // w.burst_size) * period)) for i in range(count)]
    t = float(start)
    if w.load == "poisson":
        stream = random.Random(rng.getrandbits(64))
        for i in range(count):
            out.append(Arrival(i, i % k, int(t)))
            t += stream.expovariate(w.rate_tps / 1e6)
        return out
    # ramp: the i-th gap is 1 / rate_i, rate_i linear from rate_tps to ramp_to_tps
    r0, r1 = w.rate_tps, w.ramp_to_tps
    for i in range(count):
        out.append(Arrival(i, i % k, int(t)))
        frac = i / (count - 1) if count > 1 else 1.0
        t += 1e6 / (r0 + (r1 - r0) * frac)
    return out


def offered_span_us(w: Workload | Mapping[str, Any]) -> float:
    """Virtual time over which an open load offers its requests (0 for closed or unpaced)."""
    if not isinstance(w, Workload):
        w = workload(w)
    if w.load == "closed" or w.rate_tps <= 0 or w.requests == 0:
        return 0.0
    if w.load == "ramp" and w.ramp_to_tps != w.rate_tps:
        # the rate is linear in the request index: time = N ln(r1 / r0) / (r1 - r0)
        r0, r1 = w.rate_tps, w.ramp_to_tps
        return 1e6 * w.requests * math.log(r1 / r0) / (r1 - r0)
    return 1e6 * w.requests / w.rate_tps


__all__ = [
    "ALIASES",
    "LOAD_SHAPES",
    "WORKLOAD_DEFAULTS",
    "WORKLOAD_FIELDS",
    "Arrival",
    "Workload",
    "arrivals",
    "offered_span_us",
    "translate_alias",
    "workload",
]
