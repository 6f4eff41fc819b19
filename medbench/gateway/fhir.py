"""FHIR R4 shapes: validation, OperationOutcome, Bundle, CapabilityStatement, OpenAPI.

Theory of operation
-------------------
Resources are validated with ``fhir.resources`` (the R4B models: R4's structure for every type
served here) before any transaction is built; an invalid resource is a 400 OperationOutcome that
names the offending element and never reaches the chain. Each writable type maps onto a record
category of the access policy (docs/medical-chain.md §1.6; :data:`CATEGORY`), so that grants by
category (``visit``, ``lab``, ``diagnosis``, ``imaging``; ``identity`` is private) decide who may
read or write it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from medbench.access.request import ALL

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"

CATEGORY: dict[str, str] = {
    "Patient": "identity",
    "Encounter": "visit",
    "Observation": "lab",
    "DiagnosticReport": "diagnosis",
    "DocumentReference": "imaging",
    "Binary": "imaging",
}
"""Record category of each resource type a user writes through the chain."""

SUBJECT_FIELD: dict[str, str] = {
    "Encounter": "subject",
    "Observation": "subject",
    "DiagnosticReport": "subject",
    "DocumentReference": "subject",
    "Binary": "securityContext",
    "Consent": "patient",
}
"""Where each type names its patient."""

RECORD_TYPES = ("Patient", "Encounter", "Observation", "DiagnosticReport", "DocumentReference")
DIRECTORY_TYPES = ("Practitioner", "Organization")
ALL_TYPES = (*RECORD_TYPES, *DIRECTORY_TYPES, "Consent", "AuditEvent", "Binary")

USER_SYSTEM = "urn:medbench:user"
"""Identifier system of the consortium's enrolled users (``patient-0``, ``doctor-1``, ...)."""
TX_EXT = "urn:medbench:fhir:transaction"
HEIGHT_EXT = "urn:medbench:fhir:block-height"
OPS_SYSTEM = "urn:medbench:operation"
CATEGORY_SYSTEM = "urn:medbench:category"
ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_COUNT = 100


class Invalid(Exception):
    """A resource or request that is not acceptable (400 unless ``status`` says otherwise)."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def validate(rtype: str, data: Any) -> dict[str, Any]:
    """Validate ``data`` as an R4 ``rtype`` with ``fhir.resources``; the normalised JSON."""
    if not isinstance(data, dict):
        raise Invalid("the body is not a JSON object")
    if data.get("resourceType") != rtype:
        raise Invalid(f"resourceType must be {rtype}")
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    model = get_fhir_model_class(rtype)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()[:5]
        msg = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"[:200] for e in errs
        )
        raise Invalid(f"invalid {rtype}: {msg}") from None
    except (ValueError, TypeError) as exc:
        raise Invalid(f"invalid {rtype}: {str(exc)[:300]}") from None
    out: dict[str, Any] = parsed.model_dump(mode="json", exclude_none=True)
    return out


def outcome(
    severity: str, code: str, diagnostics: str, reason: str = "", status: int = 0
) -> dict[str, Any]:
    """An OperationOutcome with one issue; ``reason`` (the validator's typed reason) as a coding."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics[:500]}
    if reason:
        issue["details"] = {
            "coding": [{"system": "urn:medbench:reason", "code": reason}],
            "text": reason,
        }
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def instant(at_us: int) -> str:
    """A FHIR instant from microseconds since the Unix epoch."""
    t = dt.datetime.fromtimestamp(at_us / 1e6, dt.UTC)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_instant(text: Any) -> int | None:
    """Microseconds since the epoch of a FHIR dateTime, or ``None``."""
    if not isinstance(text, str) or not 4 <= len(text) <= 40:
        return None
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return int(t.timestamp() * 1_000_000)


def bundle(
    kind: str,
    entries: list[dict[str, Any]],
    *,
    total: int | None = None,
    links: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A Bundle of ``kind`` (searchset, history, transaction-response)."""
    b: dict[str, Any] = {"resourceType": "Bundle", "type": kind}
    if total is not None:
        b["total"] = total
    if links:
        b["link"] = links
    b["entry"] = entries
    return b


def capability(base: str, at: str) -> dict[str, Any]:
    """The CapabilityStatement of what this gateway really does."""
    rw = ["read", "vread", "search-type", "history-instance", "create", "update", "delete"]
    resources = []
    for rtype in RECORD_TYPES:
        params = [{"name": "_count", "type": "number"}]
        if rtype == "Patient":
            params += [{"name": "identifier", "type": "token"}, {"name": "_id", "type": "token"}]
        else:
            params += [
                {"name": "patient", "type": "reference"},
                {"name": "subject", "type": "reference"},
            ]
        resources.append(_res(rtype, rw, params, versioning="versioned-update"))
    for rtype in DIRECTORY_TYPES:
        resources.append(
            _res(
                rtype,
                ["read", "vread", "search-type", "history-instance"],
                [{"name": "_id", "type": "token"}],
            )
        )
    resources.append(
        _res(
            "Consent",
            ["read", "search-type", "history-instance", "create", "delete"],
            [{"name": "patient", "type": "reference"}],
        )
    )
    resources.append(
        _res(
            "AuditEvent",
            ["read", "search-type"],
            [{"name": "patient", "type": "reference"}, {"name": "type", "type": "token"}],
        )
    )
    resources.append(_res("Binary", ["read", "create"], []))
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": at,
        "publisher": "medbench",
        "kind": "instance",
        "software": {"name": "medbench gateway"},
        "implementation": {
            "description": "FHIR front of one Medical Chain hospital node",
            "url": base,
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "description": "mutual TLS: client certificates of the consortium CA",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}],
            }
        ],
    }


def _res(
    rtype: str, interactions: list[str], params: list[dict[str, str]], versioning: str = ""
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": rtype,
        "interaction": [{"code": c} for c in interactions],
        "searchParam": params,
    }
    if versioning:
        out["versioning"] = versioning
        out["readHistory"] = True
        out["updateCreate"] = False
        out["conditionalUpdate"] = False
    return out


def category_of(rtype: str) -> str:
    """The record category of a type (ALL for a whole-record query)."""
    return CATEGORY.get(rtype, ALL)


# --- OpenAPI -----------------------------------------------------------------------------------
_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {"resourceType": {"type": "string"}},
}
_OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {"type": "array", "minItems": 1, "items": {"type": "object"}},
    },
}
_BUNDLE = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string"},
        "total": {"type": "integer", "minimum": 0},
        "entry": {"type": "array", "items": {"type": "object"}},
        "link": {"type": "array", "items": {"type": "object"}},
    },
}
_ERRORS = {
    str(c): {
        "description": d,
        "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}},
    }
    for c, d in (
        (400, "invalid request or resource"),
        (401, "no client certificate"),
        (403, "refused by the chain"),
        (404, "unknown resource"),
        (405, "not supported"),
        (410, "deleted"),
        (406, "not acceptable"),
        (409, "version conflict"),
        (412, "precondition failed"),
        (413, "body too large"),
        (415, "unsupported media type"),
        (503, "no quorum"),
    )
}


def _ok(ref: str, desc: str = "ok") -> dict[str, Any]:
    return {
        "description": desc,
        "content": {FHIR_JSON: {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _params(*names: str) -> list[dict[str, Any]]:
    out = []
    for n in names:
        if n in ("type",):
            out.append(
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(ALL_TYPES)},
                }
            )
        elif n in ("id", "vid"):
            out.append(
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": ID_RE.pattern},
                }
            )
        elif n == "height":
            out.append(
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                }
            )
        elif n == "tx":
            out.append(
                {
                    "name": n,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                }
            )
        else:
            out.append(
                {
                    "name": n,
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                }
            )
    return out


def openapi(base: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the gateway (FHIR and chain endpoints)."""
    body = {
        "required": True,
        "content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/Resource"}}},
    }
    json_ok = {"description": "ok", "content": {"application/json": {"schema": {"type": "object"}}}}
    paths: dict[str, Any] = {
        "/fhir/metadata": {
            "get": {"operationId": "capabilities", "responses": {"200": _ok("Resource")}}
        },
        "/fhir": {
            "post": {
                "operationId": "transaction",
                "requestBody": body,
                "responses": {"200": _ok("Bundle"), **_ERRORS},
            }
        },
        "/fhir/{type}": {
            "get": {
                "operationId": "search",
                "parameters": _params(
                    "type", "patient", "subject", "identifier", "_id", "_count", "_offset"
                ),
                "responses": {"200": _ok("Bundle"), **_ERRORS},
            },
            "post": {
                "operationId": "create",
                "parameters": _params("type"),
                "requestBody": body,
                "responses": {"201": _ok("Resource", "created"), **_ERRORS},
            },
        },
        "/fhir/{type}/{id}": {
            "get": {
                "operationId": "read",
                "parameters": _params("type", "id"),
                "responses": {"200": _ok("Resource"), **_ERRORS},
            },
            "put": {
                "operationId": "update",
                "parameters": _params("type", "id"),
                "requestBody": body,
                "responses": {"200": _ok("Resource"), **_ERRORS},
            },
            "delete": {
                "operationId": "delete",
                "parameters": _params("type", "id"),
                "responses": {"200": _ok("OperationOutcome"), **_ERRORS},
            },
        },
        "/fhir/{type}/{id}/_history": {
            "get": {
                "operationId": "history",
                "parameters": _params("type", "id"),
                "responses": {"200": _ok("Bundle"), **_ERRORS},
            }
        },
        "/fhir/{type}/{id}/_history/{vid}": {
            "get": {
                "operationId": "vread",
                "parameters": _params("type", "id", "vid"),
                "responses": {"200": _ok("Resource"), **_ERRORS},
            }
        },
        "/chain/blocks": {
            "get": {
                "operationId": "recentBlocks",
                "parameters": _params("limit"),
                "responses": {"200": json_ok, "400": json_ok, "404": json_ok},
            }
        },
        "/chain/blocks/{height}": {
            "get": {
                "operationId": "block",
                "parameters": _params("height"),
                "responses": {"200": json_ok, "400": json_ok, "404": json_ok},
            }
        },
        "/chain/transactions/{tx}/proof": {
            "get": {
                "operationId": "inclusionProof",
                "parameters": _params("tx"),
                "responses": {"200": json_ok, "400": json_ok, "404": json_ok},
            }
        },
        "/chain/consistency": {
            "get": {
                "operationId": "consistencyProof",
                "parameters": _params("first", "second"),
                "responses": {"200": json_ok, "400": json_ok, "404": json_ok},
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "medbench FHIR gateway", "version": "1.0"},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": {"Resource": _RESOURCE, "OperationOutcome": _OUTCOME, "Bundle": _BUNDLE}
        },
    }
