"""A Prometheus ``/metrics`` endpoint per node, and reading it back for ``cluster status``.

Theory of operation
-------------------
The node's hot path only increments plain integers; a custom collector
(:class:`NodeCollector`, registered in a registry of its own) turns :meth:`NodeHost.snapshot`
into metric families when Prometheus (or ``cluster status``) scrapes, in the HTTP server's
thread. Reading a few integers and small dicts the loop thread mutates is safe under the GIL; a
scrape may mix values of two adjacent rounds, which metrics tolerate.

Metrics (prefix ``medbench_``): ``view``, ``primary``, ``last_executed``, ``stable_checkpoint``,
``chain_height``, ``peers_connected``, ``clients_connected``, ``committed_requests_total``,
``committed_batches_total``, ``view_changes_total``, ``driver_rounds_total``,
``driver_steps_total``, ``replica_queue_length``, ``pending_requests``, ``out_queue_bytes``,
``inbox_frames``, ``rejections_total{reason}`` (protocol rejections and refused connections),
``drops_total{reason}``, ``messages_sent_total{kind}``, ``bytes_sent_total{kind}``, and the
process collector's CPU and memory.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector

PREFIX = "medbench_"
GAUGES = {
    "view": "Current PBFT view",
    "primary": "Primary of the current view",
    "last_executed": "Last executed sequence number",
    "stable_checkpoint": "Last stable checkpoint",
    "height": "Blocks after genesis (chain height)",
    "replica_queue": "Requests waiting in the primary's queue",
    "pending_requests": "Requests with a running view-change timer",
    "out_queue_bytes": "Bytes queued for peers in this process",
    "inbox_frames": "Frames received and not yet stepped",
    "net_peers": "Links to other members that are open",
    "net_clients": "Client connections that are open",
}
RENAMED = {"height": "chain_height", "net_peers": "peers_connected",
           "net_clients": "clients_connected", "replica_queue": "replica_queue_length"}  # fmt: skip
COUNTERS = {
    "committed_requests": "Requests executed",
    "committed_batches": "Batches executed",
    "view_changes": "Views entered",
    "rounds": "Driver rounds",
    "steps": "Messages stepped",
}


class NodeCollector:
    """Metric families from a host's snapshot (see the module docstring)."""

    def __init__(self, host: Any) -> None:
        self.host = host

    def collect(self) -> Iterator[Metric]:
        """Called by the registry on every scrape."""
        snap = self.host.snapshot()
        for key, doc in GAUGES.items():
            if key in snap:
                yield GaugeMetricFamily(PREFIX + RENAMED.get(key, key), doc, value=snap[key])
        for key, doc in COUNTERS.items():
            if key in snap:
                name = PREFIX + ("driver_" + key if key in ("rounds", "steps") else key)
                yield CounterMetricFamily(name, doc, value=snap[key])
        rej = CounterMetricFamily(
            PREFIX + "rejections", "Rejected messages and connections", labels=["reason"]
        )
        for reason, count in sorted(snap.get("rejections", {}).items()):
            rej.add_metric([reason], count)
        for reason, count in sorted(snap.get("net_rejections", {}).items()):
            rej.add_metric(["conn:" + reason], count)
        yield rej
        drops = CounterMetricFamily(PREFIX + "drops", "Frames dropped", labels=["reason"])
        for reason, count in sorted(snap.get("net_drops", {}).items()):
            drops.add_metric([reason], count)
        yield drops
        msgs = CounterMetricFamily(PREFIX + "messages_sent", "Messages sent", labels=["kind"])
        size = CounterMetricFamily(PREFIX + "bytes_sent", "Frame bytes sent", labels=["kind"])
        for kind, count in sorted(snap.get("sent_msgs", {}).items()):
            msgs.add_metric([kind], count)
            size.add_metric([kind], snap.get("sent_bytes", {}).get(kind, 0))
        yield msgs
        yield size
        timing = CounterMetricFamily(
            PREFIX + "driver_seconds", "Time spent in driver rounds", labels=["phase"]
        )
        for phase, secs in sorted(snap.get("timing", {}).items()):
            timing.add_metric([phase], secs)
        yield timing


def serve_metrics(host: Any, addr: str, port: int) -> Any:
    """Serve ``/metrics`` for ``host`` on ``addr:port``; returns the server (``shutdown()``)."""
    registry = CollectorRegistry()
    registry.register(NodeCollector(host))
    ProcessCollector(registry=registry)
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    return server


def scrape(url: str, timeout: float = 2.0) -> dict[str, Any]:
    """Read a node's ``/metrics`` into ``{name: value}`` and ``{name: {label: value}}``."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        text = resp.read().decode()
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name.removeprefix(PREFIX)
            if sample.labels:
                label = next(iter(sample.labels.values()))
                out.setdefault(name, {})[label] = sample.value
            else:
                out[name] = sample.value
    return out
