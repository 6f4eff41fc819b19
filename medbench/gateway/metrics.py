"""The gateway's Prometheus metrics (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The gateway's Prometheus metrics."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "medbench_gateway_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "medbench_gateway_request_seconds",
            "HTTP request time",
            ["route"],
            registry=r,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
        )
        self.commit = Histogram(
            "medbench_gateway_commit_seconds",
            "Chain commit time (f+1)",
            registry=r,
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.refusals = Counter(
            "medbench_gateway_refusals", "Chain refusals", ["reason"], registry=r
        )
        self.moves = Counter(
            "medbench_gateway_retention_moves",
            "Blobs moved between tiers",
            ["source", "target"],
            registry=r,
        )
        self.evictions = Counter(
            "medbench_gateway_retention_evictions",
            "Blobs evicted from this node's local tiers (archive keeps them)",
            registry=r,
        )
        self.retention_runs = Counter(
            "medbench_gateway_retention_runs", "Retention passes", registry=r
        )
        self.retention_refused = Counter(
            "medbench_gateway_retention_refused", "Blobs retention left in place", registry=r
        )
        self.blobs = Gauge("medbench_gateway_blobs", "Blobs per tier", ["tier"], registry=r)
        self.height = Gauge("medbench_gateway_indexed_height", "Height indexed", registry=r)
        self.block_wait = Histogram(
            "medbench_gateway_block_wait_seconds",
            "After a commit, the wait until its block is in the node's store",
            registry=r,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
        )
        self.block_timeouts = Counter(
            "medbench_gateway_block_wait_timeouts",
            "Commits whose block was not in the node's store within the bound",
            registry=r,
        )
