"""The FHIR R4 REST routes: create, read, search, history, update, delete, transaction Bundles and
the CapabilityStatement, each a chain transaction signed for the user (see :mod:`.app`).

Who sees a Consent or an AuditEvent is the chain's decision, like any record read
(docs/medical-chain.md §1.6, "Who sees the permissions"): before answering, the gateway signs one
visibility query for the user (:meth:`.service.Gateway.visibility`) asking for the scope that
would cover the answer — an authority ``all``, a patient her ``own``, anyone else the Consents
``naming`` them (``consent:grantee``) — and the validators allow or refuse it (403 with their
reason). Only then is the store index read, filtered to exactly the scope the chain allowed: a
single resource outside it is refused, a search shows what lies inside it.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medbench.access.request import (
    ALL,
    AUDIT_ALL,
    AUDIT_OWN,
    CONSENT_ALL,
    CONSENT_GRANTEE,
    CONSENT_OWN,
    AccessRequest,
    Operation,
)
from medbench.access.scenario import GENESIS_US
from medbench.gateway import fhir
from medbench.gateway.chain import Outcome
from medbench.gateway.fhir import FHIR_JSON, Invalid, outcome
from medbench.gateway.http import (
    fhir_response,
    int_param,
    read_body,
    read_json,
    rid_of,
    rtype_of,
)
from medbench.gateway.index import Entry, encode_content, logical_id
from medbench.gateway.service import (
    MAX_BINARY_BYTES,
    MAX_BUNDLE_ENTRIES,
    US,
    Gateway,
    Problem,
    User,
)
from medbench.records.attachments import Attachment
from medbench.store.blobs import BlobStore

log = logging.getLogger("medbench.gateway")


def fhir_routes(gw: Gateway) -> list[Route]:
    """The FHIR R4 REST routes of ``gw`` (the table of :mod:`.app`)."""

    def handler(
        route: str, fn: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def wrapped(request: Request) -> Response:
            t0 = time.perf_counter()
            try:
                resp = await fn(request)
            except Problem as p:
                resp = fhir_response(outcome("error", p.code, p.text, p.reason), p.status)
            except Invalid as exc:
                resp = fhir_response(outcome("error", exc.code, str(exc)), exc.status)
            except Exception:  # never a stack trace to the client
                log.exception("internal error on %s %s", request.method, route)
                resp = fhir_response(outcome("fatal", "exception", "internal error"), 500)
            gw.metrics.requests.labels(request.method, route, str(resp.status_code)).inc()
            gw.metrics.latency.labels(route).observe(time.perf_counter() - t0)
            return resp

        return wrapped

    async def metadata(request: Request) -> Response:
        return fhir_response(fhir.capability(gw.base, fhir.instant(int(gw.started * US))))

    async def create(request: Request) -> Response:
        rtype = rtype_of(request)
        user = gw.user(request)
        if rtype == "Binary":
            return await create_binary(request, user)
        if rtype in fhir.DIRECTORY_TYPES or rtype == "AuditEvent":
            raise Problem(
                405,
                "not-supported",
                f"{rtype} is read-only here: identities are enrolled through the "
                "consortium's KMC and CA (docs/medical-chain.md §1.6); audit records "
                "are written by the validators",
            )
        doc = await read_json(request)
        prepared = prepare_create(user, rtype, doc)
        out = await gw.commit(prepared)
        return await created(rtype, out)

    def prepare_create(user: User, rtype: str, doc: Any) -> AccessRequest:
        res = fhir.validate(rtype, doc)
        if rtype == "Consent":
            return gw.sign(user, Operation.GRANT, *consent_grant(res))
        if rtype == "Patient":
            ids = [i for i in res.get("identifier", []) if i.get("system") == fhir.USER_SYSTEM]
            if not ids:
                raise Problem(
                    400,
                    "required",
                    f"a Patient needs an identifier of system {fhir.USER_SYSTEM} naming "
                    "an enrolled patient (patient-<i>)",
                )
            patient = gw._enrolled_patient(ids[0].get("value"))
        else:
            patient = gw.patient_key(res.get(fhir.SUBJECT_FIELD[rtype]))
        content = encode_content(res)
        return gw.sign(user, Operation.ADD, patient, fhir.category_of(rtype), {"content": content})

    def consent_grant(res: dict[str, Any]) -> tuple[bytes, str, dict[str, Any]]:
        patient = gw.patient_key(res.get("patient"))
        prov = res.get("provision") or {}
        actors = prov.get("actor") or []
        if len(actors) != 1:
            raise Problem(400, "required", "a Consent names exactly one provision.actor")
        ref = str((actors[0].get("reference") or {}).get("reference", ""))
        name = ref.rpartition("/")[2]
        if name not in gw.users:
            raise Problem(400, "value", f"unknown actor {ref[:80]!r}")
        ops = sorted(
            {
                c.get("code")
                for a in prov.get("action", [])
                for c in a.get("coding", [])
                if c.get("code")
            }
            or {"read"}
        )
        cats = sorted(
            {
                c.get("code")
                for a in prov.get("code", [])
                for c in a.get("coding", [])
                if c.get("code")
            }
            or {ALL}
        )
        now = gw.chain.chain_time_us(GENESIS_US)
        off = gw.epoch_us() - GENESIS_US
        period = prov.get("period") or {}
        nb = fhir.parse_instant(period.get("start"))
        na = fhir.parse_instant(period.get("end"))
        body = {
            "grantee": gw.users[name].public_key,
            "ops": ops,
            "categories": cats,
            "not_before_us": (nb - off) if nb is not None else now - 60 * US,
            "not_after_us": (na - off) if na is not None else now + 86_400 * US,
        }
        return patient, ALL, body

    async def created(rtype: str, out: Outcome) -> Response:
        height = await gw.indexed(out.tx_id)
        rid = logical_id(out.tx_id)
        entry = gw.index.get(rtype, rid)
        headers = {
            "Location": f"{gw.base}/{rtype}/{rid}/_history/1",
            "ETag": 'W/"1"',
            "X-Medbench-Transaction": out.tx_id.hex(),
            "X-Medbench-Block-Height": str(height),
        }
        body = gw.view(entry) if entry is not None else {"resourceType": rtype, "id": rid}
        return fhir_response(body, 201, headers)

    async def create_binary(request: Request, user: User) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in (FHIR_JSON, "application/json"):
            doc = fhir.validate("Binary", await read_json(request))
            try:
                data = base64.b64decode(doc.get("data", ""), validate=True)
            except ValueError:
                raise Problem(400, "value", "Binary.data is not base64") from None
            media = str(doc.get("contentType", "")).lower()
            ref = doc.get("securityContext")
        else:
            data = await read_body(request, MAX_BINARY_BYTES)
            media = ctype
            ref = {"reference": request.headers.get("x-security-context", "")}
        if not data:
            raise Problem(400, "required", "an empty Binary")
        try:
            digest = gw.blobs.put(data)
            att = Attachment(digest, media, len(data), "fhir-binary")
        except Exception as exc:  # a bad media type
            raise Problem(400, "value", f"cannot store this Binary: {str(exc)[:200]}") from None
        archive = gw.blobs.archive
        if isinstance(archive, BlobStore):
            archive.put(data)  # all data is synced to the health authority (§1.4)
        patient = gw.patient_key(ref)
        meta = {"resourceType": "Binary", "contentType": media, "securityContext": ref}
        req = gw.sign(
            user, Operation.ADD, patient, "imaging", {"content": encode_content(meta, [att])}
        )
        out = await gw.commit(req)
        height = await gw.indexed(out.tx_id)
        headers = {
            "Location": f"{gw.base}/Binary/{digest.hex()}",
            "ETag": 'W/"1"',
            "X-Medbench-Transaction": out.tx_id.hex(),
            "X-Medbench-Block-Height": str(height),
        }
        return fhir_response(
            {"resourceType": "Binary", "id": digest.hex(), "contentType": media}, 201, headers
        )

    async def read(request: Request) -> Response:
        rtype, rid = rtype_of(request), rid_of(request)
        user = gw.user(request)
        if rtype in fhir.DIRECTORY_TYPES:
            doc = gw.directory(rtype, rid)
            if doc is None:
                raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
            return fhir_response(doc)
        if rtype == "Binary":
            return await read_binary(request, user, rid)
        if rtype == "AuditEvent":
            scope = await audit_scope(user)
            row = next((a for a in gw.index.audits if a.id == rid), None)
            if row is None or not in_audit_scope(scope, user, row):
                # outside the scope the chain allowed: as unknown as a row that never was
                raise Problem(404, "not-found", f"AuditEvent/{rid} is not known")
            return fhir_response(audit_event(row))
        gw.index.refresh()
        entry = gw.index.get(rtype, rid)
        if entry is None:
            raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
        if rtype == "Consent":
            await see_consent(user, entry)
        else:
            await gw.query(user, entry.patient, fhir.category_of(rtype))
        if entry.current.resource is None:
            raise Problem(410, "deleted", f"{rtype}/{rid} was deleted")
        return fhir_response(gw.view(entry), headers={"ETag": f'W/"{entry.current.number}"'})

    def consent_scope(user: User, patient: bytes) -> str:
        """The visibility scope to ask the chain for, to see ``patient``'s Consents (the chain
        decides; asking for a scope one does not hold is refused, not widened)."""
        if user.role == "authority":
            return CONSENT_ALL
        return CONSENT_OWN if user.ident.public_key == patient else CONSENT_GRANTEE

    def in_consent_scope(scope: str, user: User, entry: Entry) -> bool:
        """Whether the Consent ``entry`` lies inside the ``scope`` the chain allowed."""
        if scope == CONSENT_ALL:
            return True
        if scope == CONSENT_OWN:
            return entry.patient == user.ident.public_key
        g = (entry.versions[0].resource or entry.current.resource or {}).get("_grant", {})
        return bool(g.get("grantee") == user.ident.public_key)

    async def see_consent(user: User, entry: Entry) -> None:
        """One visibility query on chain for this Consent; 403 if refused or outside it."""
        scope = consent_scope(user, entry.patient)
        await gw.visibility(user, scope, entry.patient)
        if not in_consent_scope(scope, user, entry):
            raise Problem(
                403,
                "forbidden",
                f"this Consent lies outside the scope the chain allowed ({scope}): it does not "
                "name you",
                "not-permitted",
            )

    async def read_binary(request: Request, user: User, rid: str) -> Response:
        try:
            digest = bytes.fromhex(rid)
        except ValueError:
            raise Problem(404, "not-found", "no such Binary") from None
        gw.index.refresh()
        info = gw.index.blobs.get(digest)
        if info is None:
            raise Problem(404, "not-found", "no such Binary")
        await gw.query(user, info.patient, "imaging")
        try:
            data = await asyncio.to_thread(gw.blobs.get, digest)
        except Exception:
            raise Problem(
                404, "not-found", "the image is not held by this node or the archive"
            ) from None
        accept = request.headers.get("accept", "")
        if FHIR_JSON in accept or "application/json" in accept:
            return fhir_response(
                {
                    "resourceType": "Binary",
                    "id": rid,
                    "contentType": info.content_type,
                    "data": base64.b64encode(data).decode(),
                }
            )
        return Response(data, 200, media_type=info.content_type)

    async def vread(request: Request) -> Response:
        rtype, rid = rtype_of(request, fhir.ALL_TYPES), rid_of(request)
        vid = rid_of(request, "vid")
        user = gw.user(request)
        if rtype in fhir.DIRECTORY_TYPES:
            doc = gw.directory(rtype, rid)
            if doc is None or vid != "1":
                raise Problem(404, "not-found", f"{rtype}/{rid}/_history/{vid} is not known")
            return fhir_response(doc)
        gw.index.refresh()
        entry = gw.index.get(rtype, rid)
        if (
            entry is None
            or not (vid.isascii() and vid.isdigit())
            or not 1 <= int(vid) <= len(entry.versions)
        ):
            raise Problem(404, "not-found", f"{rtype}/{rid}/_history/{vid} is not known")
        n = int(vid)
        if rtype == "Consent":
            await see_consent(user, entry)
        else:
            await gw.query(user, entry.patient, fhir.category_of(rtype), n != len(entry.versions))
        if entry.versions[n - 1].resource is None:
            raise Problem(410, "deleted", "this version is a deletion")
        return fhir_response(gw.view(entry, n), headers={"ETag": f'W/"{n}"'})

    async def history(request: Request) -> Response:
        rtype, rid = rtype_of(request), rid_of(request)
        user = gw.user(request)
        if rtype in fhir.DIRECTORY_TYPES:
            doc = gw.directory(rtype, rid)
            if doc is None:
                raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
            return fhir_response(
                fhir.bundle(
                    "history",
                    [
                        {
                            "fullUrl": f"{gw.base}/{rtype}/{rid}",
                            "resource": doc,
                            "request": {"method": "POST", "url": rtype},
                        }
                    ],
                    total=1,
                )
            )
        gw.index.refresh()
        entry = gw.index.get(rtype, rid)
        if entry is None or rtype in ("AuditEvent", "Binary"):
            raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
        if rtype == "Consent":
            await see_consent(user, entry)
        else:
            await gw.query(user, entry.patient, fhir.category_of(rtype), True)
        entries = []
        for v in reversed(entry.versions):
            e: dict[str, Any] = {
                "fullUrl": f"{gw.base}/{rtype}/{rid}",
                "request": {
                    "method": v.method,
                    "url": f"{rtype}/{rid}" if v.method != "POST" else rtype,
                },
                "response": {
                    "status": "200" if v.method != "POST" else "201",
                    "etag": f'W/"{v.number}"',
                },
            }
            if v.resource is not None:
                e["resource"] = gw.view(entry, v.number)
            entries.append(e)
        return fhir_response(fhir.bundle("history", entries, total=len(entries)))

    async def search(request: Request) -> Response:
        rtype = rtype_of(request)
        user = gw.user(request)
        count = int_param(request, "_count", 20, 1, fhir.MAX_COUNT)
        offset = int_param(request, "_offset", 0, 0, 10_000_000)
        q = request.query_params
        for k, v in q.multi_items():
            if len(k) > 64 or len(v) > 200:
                raise Problem(400, "value", "search parameter too long")
        if rtype in fhir.DIRECTORY_TYPES:
            names = [n for n in gw.users if gw.directory(rtype, n) is not None]
            if "_id" in q:
                names = [n for n in names if n == q["_id"]]
            items = [gw.directory(rtype, n) or {} for n in names]
        elif rtype == "AuditEvent":
            scope = await audit_scope(user)
            rows = [a for a in gw.index.audits if in_audit_scope(scope, user, a)]
            kind = q.get("type")
            if kind:
                rows = [a for a in rows if a.kind == kind.rpartition("|")[2]]
            if "patient" in q:
                key = gw.patient_key(_ref(q["patient"]))
                rows = [a for a in rows if a.patient == key]
            items = [audit_event(a) for a in reversed(rows)]
        elif rtype == "Binary":
            raise Problem(405, "not-supported", "Binary is read by id")
        else:
            patient = search_patient(user, rtype, q)
            if rtype == "Consent":
                scope = consent_scope(user, patient)
                await gw.visibility(user, scope, patient)  # one chain query per search
                entries = [e for e in gw.index.iter_type("Consent") if e.patient == patient]
                entries = [e for e in entries if in_consent_scope(scope, user, e)]
            else:
                await gw.query(user, patient, fhir.category_of(rtype))
                entries = gw.index.of_patient(rtype, patient)
                if "_id" in q:
                    entries = [e for e in entries if e.id == q["_id"]]
            items = [gw.view(e) for e in entries]
        total = len(items)
        page = items[offset : offset + count]
        links = [{"relation": "self", "url": _page_url(gw.base, rtype, q, offset, count)}]
        if offset + count < total:
            links.append(
                {"relation": "next", "url": _page_url(gw.base, rtype, q, offset + count, count)}
            )
        entries_out = [
            {
                "fullUrl": f"{gw.base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in page
        ]
        return fhir_response(fhir.bundle("searchset", entries_out, total=total, links=links))

    def search_patient(user: User, rtype: str, q: Any) -> bytes:
        if rtype == "Patient":
            if "identifier" in q:
                return gw._enrolled_patient(q["identifier"].rpartition("|")[2])
            if "_id" in q:
                return gw.patient_key({"reference": f"Patient/{q['_id']}"})
        for key in ("patient", "subject"):
            if key in q:
                return gw.patient_key(_ref(q[key]))
        if user.role == "patient":
            return user.ident.public_key
        raise Problem(
            400,
            "required",
            "name the patient (patient=, subject=, identifier=): every query is one "
            "audited chain transaction about one patient (docs/medical-chain.md §1.3)",
        )

    async def audit_scope(user: User) -> str:
        """One visibility query on chain for the audit trail: an authority asks for all of it
        (the blacklist included), anyone else for their own (as patient or requester)."""
        if user.role == "authority":
            await gw.visibility(user, AUDIT_ALL)
            return AUDIT_ALL
        own = user.ident.public_key if user.role == "patient" else b""
        await gw.visibility(user, AUDIT_OWN, own)
        return AUDIT_OWN

    def in_audit_scope(scope: str, user: User, row: Any) -> bool:
        """Whether the audit or blacklist ``row`` lies inside the ``scope`` the chain allowed."""
        if scope == AUDIT_ALL:
            return True
        if row.kind == "blacklist":  # an authority's view only
            return False
        return user.ident.public_key in (row.patient, row.requester)

    def audit_event(row: Any) -> dict[str, Any]:
        who = gw.name_of.get(row.requester, row.requester.hex()[:16])
        who_type = "Patient" if who.startswith("patient") else "Practitioner"
        patient_ids = gw.index.patient_of_key.get(row.patient, [])
        ok = row.outcome in ("accepted", "allowed", "ok")
        off = gw.epoch_us() - GENESIS_US
        ev: dict[str, Any] = {
            "resourceType": "AuditEvent",
            "id": row.id,
            "type": {"system": "urn:medbench:record", "code": row.kind},
            "subtype": [{"system": fhir.OPS_SYSTEM, "code": row.operation or "read"}],
            "action": "R" if row.operation in ("read", "emergency") else "E",
            "recorded": fhir.instant(row.at_us + off),
            "outcome": "0" if ok else "8",
            "outcomeDesc": row.outcome,
            "agent": [
                {
                    "who": {"reference": f"{who_type}/{who}"}
                    if who in gw.users
                    else {"display": who},
                    "requestor": True,
                }
            ],
            "source": {"observer": {"display": f"medbench validators (node {gw.node})"}},
            "meta": {
                "extension": [
                    {"url": fhir.TX_EXT, "valueString": row.tx_id.hex()},
                    {"url": fhir.HEIGHT_EXT, "valueInteger": row.height},
                ]
            },
        }
        ent: list[dict[str, Any]] = []
        if patient_ids:
            ent.append({"what": {"reference": f"Patient/{patient_ids[0]}"}})
        elif row.patient in gw.name_of:
            ent.append(
                {
                    "what": {
                        "identifier": {"system": fhir.USER_SYSTEM, "value": gw.name_of[row.patient]}
                    }
                }
            )
        if row.category:
            ent.append({"what": {"display": f"category {row.category}"}})
        if ent:
            ev["entity"] = ent
        return ev

    async def update(request: Request) -> Response:
        rtype, rid = rtype_of(request, fhir.RECORD_TYPES), rid_of(request)
        user = gw.user(request)
        doc = await read_json(request)
        res = fhir.validate(rtype, doc)
        if res.get("id") not in (None, rid):
            raise Problem(400, "invalid", "the resource id differs from the URL's")
        gw.index.refresh()
        entry = gw.index.get(rtype, rid)
        if entry is None:
            raise Problem(404, "not-found", f"{rtype}/{rid} is not known (create with POST)")
        if entry.current.resource is None:
            raise Problem(410, "deleted", f"{rtype}/{rid} was deleted")
        record, if_match = entry.live_tx, False
        im = request.headers.get("if-match")
        if im is not None:
            n = im.strip().removeprefix("W/").strip('"')
            if not (n.isascii() and n.isdigit()) or not 1 <= int(n) <= len(entry.versions):
                raise Problem(412, "conflict", f"If-Match {im[:40]!r} names no version")
            record, if_match = entry.versions[int(n) - 1].tx_id, True
        body = {"record": record, "content": encode_content(res), "reason": "fhir update"}
        req = gw.sign(user, Operation.MODIFY, entry.patient, entry.category, body)
        out = await gw.commit(req, if_match)
        height = await gw.indexed(out.tx_id)
        entry = gw.index.get(rtype, rid) or entry
        v = entry.current.number
        headers = {
            "Location": f"{gw.base}/{rtype}/{rid}/_history/{v}",
            "ETag": f'W/"{v}"',
            "X-Medbench-Transaction": out.tx_id.hex(),
            "X-Medbench-Block-Height": str(height),
        }
        return fhir_response(gw.view(entry), 200, headers)

    async def delete(request: Request) -> Response:
        rtype, rid = rtype_of(request, (*fhir.RECORD_TYPES, "Consent")), rid_of(request)
        user = gw.user(request)
        gw.index.refresh()
        entry = gw.index.get(rtype, rid)
        if entry is None:
            raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
        if rtype == "Consent":
            grant_tx = entry.versions[0].tx_id
            req = gw.sign(user, Operation.REVOKE, entry.patient, ALL, {"grant": grant_tx})
        else:
            if entry.current.resource is None:
                return fhir_response(outcome("information", "informational", "already deleted"))
            req = gw.sign(
                user, Operation.DELETE, entry.patient, entry.category, {"record": entry.live_tx}
            )
        out = await gw.commit(req)
        height = await gw.indexed(out.tx_id)
        return fhir_response(
            outcome("information", "informational", f"deleted {rtype}/{rid}"),
            headers={
                "X-Medbench-Transaction": out.tx_id.hex(),
                "X-Medbench-Block-Height": str(height),
            },
        )

    async def transaction(request: Request) -> Response:
        user = gw.user(request)
        doc = await read_json(request)
        if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
            raise Problem(400, "invalid", "POST /fhir takes a Bundle")
        if doc.get("type") not in ("transaction", "batch"):
            raise Problem(400, "invalid", "the Bundle must be of type transaction")
        fhir.validate("Bundle", doc)
        items = doc.get("entry") or []
        if not 1 <= len(items) <= MAX_BUNDLE_ENTRIES:
            raise Problem(400, "too-costly", f"a transaction holds 1..{MAX_BUNDLE_ENTRIES} entries")
        # every entry is built and signed before anything is submitted: an invalid entry stops
        # the whole transaction before the chain sees any of it. Logical ids are known now (the
        # transaction IDs), so urn:uuid references between entries are resolved first.
        plan: list[tuple[str, dict[str, Any]]] = []
        names: dict[str, str] = {}
        for i, e in enumerate(items):
            req_ = e.get("request") or {}
            if req_.get("method") != "POST":
                raise Problem(400, "not-supported", f"entry {i}: only POST (create) entries")
            res = e.get("resource")
            rtype = str((res or {}).get("resourceType", ""))
            if rtype not in (*fhir.RECORD_TYPES, "Consent"):
                raise Problem(400, "not-supported", f"entry {i}: cannot create {rtype[:40]!r}")
            plan.append((rtype, res))
        signed: list[tuple[str, AccessRequest]] = []
        for i, (rtype, res) in enumerate(plan):
            res = _resolve(res, names)
            try:
                req = prepare_create(user, rtype, res)
            except (Problem, Invalid) as exc:
                raise Problem(400, "invalid", f"entry {i}: {exc}") from None
            full = items[i].get("fullUrl")
            if isinstance(full, str) and full.startswith("urn:uuid:"):
                names[full] = f"{rtype}/{logical_id(req.request_id)}"
            signed.append((rtype, req))
        results = await asyncio.gather(*(gw.commit(r) for _, r in signed), return_exceptions=True)
        problems = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
        if problems:
            i, p = problems[0]
            if isinstance(p, Problem):
                committed = sum(1 for r in results if isinstance(r, Outcome))
                raise Problem(
                    p.status,
                    p.code,
                    f"entry {i}: {p.text} ({committed} other entries "
                    "were committed: a chain does not roll back)",
                    p.reason,
                )
            raise p
        out_entries = []
        last = 0
        for (rtype, _), r in zip(signed, results, strict=True):
            assert isinstance(r, Outcome)
            last = max(last, await gw.indexed(r.tx_id))
            rid = logical_id(r.tx_id)
            out_entries.append(
                {
                    "response": {
                        "status": "201 Created",
                        "location": f"{rtype}/{rid}/_history/1",
                        "etag": 'W/"1"',
                        "outcome": outcome(
                            "information",
                            "informational",
                            f"committed as transaction {r.tx_id.hex()}",
                        ),
                    }
                }
            )
        return fhir_response(
            fhir.bundle("transaction-response", out_entries),
            headers={"X-Medbench-Block-Height": str(last)},
        )

    return [
        Route("/fhir/metadata", handler("metadata", metadata), methods=["GET"]),
        Route("/fhir", handler("transaction", transaction), methods=["POST"]),
        Route("/fhir/{type}", handler("search", search), methods=["GET"]),
        Route("/fhir/{type}", handler("create", create), methods=["POST"]),
        Route("/fhir/{type}/{id}", handler("read", read), methods=["GET"]),
        Route("/fhir/{type}/{id}", handler("update", update), methods=["PUT"]),
        Route("/fhir/{type}/{id}", handler("delete", delete), methods=["DELETE"]),
        Route("/fhir/{type}/{id}/_history", handler("history", history), methods=["GET"]),
        Route("/fhir/{type}/{id}/_history/{vid}", handler("vread", vread), methods=["GET"]),
    ]


def _ref(value: str) -> dict[str, Any]:
    if "/" not in value:
        value = f"Patient/{value}"
    return {"reference": value}


def _resolve(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {
            k: (names.get(v, v) if k == "reference" and isinstance(v, str) else _resolve(v, names))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve(v, names) for v in value]
    return value


def _page_url(base: str, rtype: str, q: Any, offset: int, count: int) -> str:
    params = [(k, v) for k, v in q.multi_items() if k not in ("_offset", "_count")]
    params += [("_count", str(count)), ("_offset", str(offset))]
    return f"{base}/{rtype}?{urllib.parse.urlencode(params)}"
