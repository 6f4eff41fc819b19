"""The chain endpoints for auditors: a block by height (with its Merkle tree), a transaction's
inclusion proof and a consistency proof between two heights, each verifiable offline with
``medbench verify`` (:mod:`.proofs` writes the documents).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from medbench.gateway import proofs
from medbench.gateway.http import int_param
from medbench.gateway.service import Gateway, Problem

log = logging.getLogger("medbench.gateway")


def plain(gw: Gateway, route: str, fn: Callable[[Request], Awaitable[Response]]) -> Any:
    """``fn`` answering plain JSON errors and counted in ``gw``'s metrics."""

    async def wrapped(request: Request) -> Response:
        try:
            resp = await fn(request)
        except Problem as p:
            resp = JSONResponse({"error": p.text}, p.status)
        except Exception:
            log.exception("internal error on %s", route)
            resp = JSONResponse({"error": "internal error"}, 500)
        gw.metrics.requests.labels(request.method, route, str(resp.status_code)).inc()
        return resp

    return wrapped


def chain_routes(gw: Gateway) -> list[Route]:
    """The auditors' endpoints of ``gw``: blocks, inclusion and consistency proofs."""

    def validators() -> list[bytes]:
        return [m.validator_key for m in gw.chain.cons.members]

    async def blocks(request: Request) -> Response:
        limit = int_param(request, "limit", 10, 1, 100)
        gw.index.refresh()
        out = [proofs.block_doc(b) for b in gw.index.blocks[-limit:]][::-1]
        return JSONResponse({"height": gw.index.height, "blocks": out})

    async def block(request: Request) -> Response:
        raw = str(request.path_params.get("height", ""))
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
            return JSONResponse({"error": "height must be an integer"}, 400)
        gw.index.refresh()
        b = gw.index.block(int(raw))
        if b is None:
            return JSONResponse({"error": f"no block at height {raw}"}, 404)
        doc = proofs.block_doc(b)
        if len(b.tx_ids) <= 256:
            doc["tree"] = [[h.hex() for h in level] for level in _levels(b.tx_ids)]
        return JSONResponse(doc)

    async def inclusion(request: Request) -> Response:
        raw = str(request.path_params.get("tx", ""))
        try:
            tx = bytes.fromhex(raw)
        except ValueError:
            tx = b""
        if len(tx) != 32:
            return JSONResponse({"error": "a transaction ID is 64 hex digits"}, 404)
        gw.index.refresh()
        h = gw.index.tx_height.get(tx)
        b = gw.index.block(h) if h else None
        if b is None:
            return JSONResponse({"error": "transaction not in any stored block"}, 404)
        return JSONResponse(proofs.inclusion_doc(b, tx, validators()))

    async def consistency(request: Request) -> Response:
        gw.index.refresh()
        height = gw.index.height
        try:
            first = int_param(request, "first", 1, 1, 1 << 40)
            second = int_param(request, "second", height, 1, 1 << 40)
        except Problem as p:
            return JSONResponse({"error": p.text}, 400)
        if not first <= second or second - first > proofs.MAX_SPAN:
            return JSONResponse(
                {"error": f"need first <= second <= first + {proofs.MAX_SPAN}"}, 400
            )
        if second > height:
            return JSONResponse({"error": f"the chain has height {height}"}, 404)
        return JSONResponse(proofs.consistency_doc(gw.index.blocks, first, second, validators()))

    return [
        Route("/chain/blocks", plain(gw, "blocks", blocks), methods=["GET"]),
        Route("/chain/blocks/{height}", plain(gw, "block", block), methods=["GET"]),
        Route("/chain/transactions/{tx}/proof", plain(gw, "inclusion", inclusion), methods=["GET"]),
        Route("/chain/consistency", plain(gw, "consistency", consistency), methods=["GET"]),
    ]


def _levels(ids: tuple[bytes, ...]) -> list[list[bytes]]:
    from medbench import merkle

    level = [merkle.leaf_hash(t) for t in ids]
    out = [level]
    while len(level) > 1:
        level = [
            merkle.node_hash(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
        out.append(level)
    return out
