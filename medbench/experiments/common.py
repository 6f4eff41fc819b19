"""Pieces the HotStuff and Raft adapters share with PBFT's: parameters, workload, keys.

Theory of operation
-------------------
The adapters of :mod:`medbench.experiments.hotstuff` and :mod:`medbench.experiments.raft` take
the workload parameters of :mod:`medbench.experiments.pbft` with the same meaning, so that a
comparison changes one knob, the protocol:

* ``clients`` closed-loop clients ``n .. n + clients - 1`` (one request outstanding each), client
  ``j`` at the site of replica ``j mod n`` (a hospital runs a replica and its clients);
* ``requests`` operations of ``payload_bytes`` random bytes dealt round-robin to the clients,
  submitted ``interval_us`` apart from ``start_us`` (0: all at ``start_us``); the k-th operation
  of client ``c`` is the transaction ``(c, k)``, the key of its completion
  (:func:`completion_key`);
* ``byzantine`` / ``byzantine_count`` / ``byzantine_ids``: which replicas run a named faulty
  behaviour (default: the first ``byzantine_count`` replicas, at least one).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from medbench.experiments.runner import ExperimentError, Submission


def int_param(params: Mapping[str, Any], key: str, defaults: Mapping[str, Any]) -> int:
    """``params[key]`` (or its default) as an integer, or a helpful :class:`ExperimentError`."""
    value = params.get(key, defaults.get(key))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExperimentError(f"parameter {key} must be an integer, not {value!r}") from None


def closed_loop_workload(
    rng: random.Random,
    client_ids: Sequence[int],
    requests: int,
    payload_bytes: int,
    interval_us: int,
    submit: Callable[[bytes], Any],
    start_us: int = 0,
) -> list[Submission]:
    """The submissions of the module docstring (operations drawn from ``rng`` in order)."""
    subs: list[Submission] = []
    issued = dict.fromkeys(client_ids, 0)
    n_clients = len(client_ids)
    for r in range(requests):
        c = client_ids[r % n_clients]
        issued[c] += 1
        op = rng.randbytes(payload_bytes)
        subs.append(Submission(start_us + r * interval_us, c, submit(op), (c, issued[c])))
    return subs


def completion_key(item: Any) -> Hashable:
    """A client's completion is named ``(client, timestamp)``, as its submission was."""
    client = getattr(item, "client", None)
    timestamp = getattr(item, "timestamp", None)
    if client is not None and timestamp is not None:
        return (client, timestamp)
    return item  # type: ignore[no-any-return]


def byzantine_ids(
    params: Mapping[str, Any], behaviours: Sequence[str], n: int, defaults: Mapping[str, Any]
) -> tuple[str, list[int]]:
    """The faulty behaviour named by ``params`` (``""`` for none) and the replicas running it."""
    behaviour = str(params.get("byzantine") or "")
    if not behaviour:
        return "", []
    if behaviour not in behaviours:
        raise ExperimentError(f"unknown byzantine behaviour {behaviour!r}; known: {behaviours}")
    count = max(1, int_param(params, "byzantine_count", defaults))
    raw = str(params.get("byzantine_ids", "") or "")
    ids = [int(x) for x in raw.split(",") if x.strip()] if raw else list(range(count))
    if len(set(ids)) != len(ids) or any(not 0 <= i < n for i in ids):
        raise ExperimentError(f"byzantine_ids {ids} must be distinct replicas of 0..{n - 1}")
    return behaviour, ids


__all__ = ["byzantine_ids", "closed_loop_workload", "completion_key", "int_param"]
