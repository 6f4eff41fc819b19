"""Pieces the HotStuff and Raft adapters share with PBFT's: parameters, workload, keys.

Theory of operation
-------------------
The adapters of :mod:`medbench.experiments.hotstuff` and :mod:`medbench.experiments.raft` take
the workload parameters of :mod:`medbench.experiments.pbft` with the same meaning, so that a
comparison changes one knob, the protocol:

* the common workload of :mod:`medbench.experiments.load` (``clients``, ``requests``,
  ``rate_tps``, ``payload_bytes``, ``load``, ...): client nodes ``n .. n + clients - 1``, client
  ``j`` at the site of replica ``j mod n`` (a hospital runs a replica and its clients), request
  ``i`` to client ``i mod clients`` at the time the load shape gives it
  (:func:`workload_submissions`); a client orders one request at a time, so under an open load
  a request's latency includes its wait behind the client's earlier requests (``load =
  "closed"`` sends a client's next request only when one is answered); the k-th operation of
  client ``c`` is the transaction ``(c, k)``, the key of its completion (:func:`completion_key`);
* ``byzantine`` / ``byzantine_count`` / ``byzantine_ids``: which replicas run a named faulty
  behaviour (default: the first ``byzantine_count`` replicas, at least one).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from medbench.experiments import load
from medbench.experiments.runner import ExperimentError, Submission


def int_param(params: Mapping[str, Any], key: str, defaults: Mapping[str, Any]) -> int:
    """``params[key]`` (or its default) as an integer, or a helpful :class:`ExperimentError`."""
    value = params.get(key, defaults.get(key))
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExperimentError(f"parameter {key} must be an integer, not {value!r}") from None


def workload_submissions(
    p: Mapping[str, Any],
    rng: random.Random,
    client_ids: Sequence[int],
    submit: Callable[[bytes], Any],
    offset_us: int = 0,
) -> list[Submission]:
    """The submissions of the common workload (:mod:`medbench.experiments.load`) as PBFT's
    adapter makes them: request ``i`` goes to client ``client_ids[i mod clients]`` at the time
    the load shape gives it (plus ``offset_us``), with ``payload_bytes`` random bytes drawn
    from ``rng`` in order; a closed loop chains each request to the completion it waits for."""
    size = int(p["payload_bytes"])
    subs: list[Submission] = []
    issued = dict.fromkeys(client_ids, 0)
    names: list[tuple[int, int]] = []
    for a in load.arrivals(load.workload(p), rng):
        c = client_ids[a.client]
        issued[c] += 1
        names.append((c, issued[c]))
        op = rng.randbytes(size)
        after = names[a.after] if a.after is not None else None
        at = a.at_us + (offset_us if after is None else 0)
        subs.append(Submission(at, c, submit(op), names[-1], after))
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


__all__ = ["byzantine_ids", "completion_key", "int_param", "workload_submissions"]
