"""The live consortium dashboard: the page and its assets, the status JSON it polls (nodes,
throughput, latency, recent blocks), Prometheus metrics and the OpenAPI document.
"""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from medbench.gateway import fhir, proofs
from medbench.gateway.chain_routes import plain
from medbench.gateway.service import STATIC, Gateway


def dashboard_routes(gw: Gateway) -> list[Route]:
    """The live dashboard of ``gw`` (page, assets, status JSON), ``/metrics``, ``/openapi.json``."""

    async def dashboard(request: Request) -> Response:
        return FileResponse(STATIC / "dashboard.html", media_type="text/html")

    async def static(request: Request) -> Response:
        name = str(request.path_params.get("name", ""))
        files = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
        if name not in files:
            return Response("not found", 404)
        return FileResponse(STATIC / name, media_type=files[name])

    async def status(request: Request) -> Response:
        nodes = await gw.nodes_status()
        gw.index.refresh()
        now = time.time()
        lat = [us for t, us in gw.chain.latencies if now - t <= 10.0]
        lat.sort()
        recent = [proofs.block_doc(b) for b in gw.index.blocks[-8:]][::-1]
        for b in recent:
            b["tx_ids"] = b["tx_ids"][:64]
        return JSONResponse(
            {
                "gateway": gw.node,
                "time": now,
                "height": gw.index.height,
                "nodes": nodes,
                "commits_10s": len(lat),
                "throughput": len(lat) / 10.0,
                "latency_ms": {"p50": _pct(lat, 0.5) / 1000, "p99": _pct(lat, 0.99) / 1000},
                "reachable": gw.chain.reachable,
                "quorum": gw.chain.quorum,
                "committed": gw.chain.accepted,
                "refused": gw.chain.refused,
                "blocks": recent,
            }
        )

    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(gw.metrics.registry), media_type="text/plain; version=0.0.4"
        )

    async def openapi(request: Request) -> Response:
        return JSONResponse(fhir.openapi(gw.base.removesuffix("/fhir")))

    return [
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/api/status", plain(gw, "status", status), methods=["GET"]),
        Route("/dashboard/{name}", static, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


def _pct(values: list[int], p: float) -> float:
    if not values:
        return 0.0
    return float(values[min(int(p * len(values)), len(values) - 1)])
