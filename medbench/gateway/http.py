"""Request parsing and responses shared by the gateway's routes: bounded bodies, JSON depth,
ids, integer parameters and FHIR JSON answers.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from medbench.gateway import fhir
from medbench.gateway.fhir import FHIR_JSON
from medbench.gateway.service import MAX_DEPTH, MAX_JSON_BYTES, Problem


# --- request helpers --------------------------------------------------------------------------
def depth_ok(value: Any) -> bool:
    """Whether parsed JSON nests at most ``MAX_DEPTH`` deep (and is not absurdly large)."""
    stack = [(value, 0)]
    seen = 0
    while stack:
        v, d = stack.pop()
        seen += 1
        if d > MAX_DEPTH or seen > 200_000:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return True


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 once it exceeds ``limit`` bytes (declared or sent)."""
    cl = request.headers.get("content-length")
    if cl is not None and (not (cl.isascii() and cl.isdigit()) or int(cl) > limit):
        raise Problem(413, "too-costly", f"the body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "too-costly", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request) -> Any:
    """The FHIR JSON body: content type, size, syntax and depth checked (typed 4xx problems)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (FHIR_JSON, "application/json"):
        raise Problem(415, "not-supported", f"content type must be {FHIR_JSON}")
    data = await read_body(request, MAX_JSON_BYTES)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise Problem(400, "structure", "the body is not valid JSON") from None
    if not depth_ok(doc):
        raise Problem(400, "too-costly", f"JSON nested deeper than {MAX_DEPTH}")
    return doc


def rtype_of(request: Request, allowed: tuple[str, ...] = fhir.ALL_TYPES) -> str:
    """The resource type of the path, if served here (404 otherwise)."""
    rtype = str(request.path_params.get("type", ""))
    if rtype not in allowed:
        raise Problem(404, "not-supported", f"resource type {rtype[:40]!r} is not served here")
    return rtype


def rid_of(request: Request, key: str = "id") -> str:
    """A FHIR id from the path (400 if malformed)."""
    rid = str(request.path_params.get(key, ""))
    if not fhir.ID_RE.match(rid):
        raise Problem(400, "value", "malformed id")
    return rid


def int_param(request: Request, key: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter in ``[lo, hi]``, or ``default`` when absent (400 otherwise)."""
    raw = request.query_params.get(key)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or not lo <= int(raw) <= hi:
        raise Problem(400, "value", f"{key} must be an integer in [{lo}, {hi}]")
    return int(raw)


def fhir_response(
    doc: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A FHIR JSON response."""
    return Response(json.dumps(doc, separators=(",", ":")), status, headers, FHIR_JSON)
