"""The gateway's HTTP application (Starlette): FHIR R4 REST, chain endpoints, dashboard, metrics.

Theory of operation
-------------------
Every FHIR interaction is one or more chain transactions signed for the authenticated user
(:class:`Gateway.sign`) and committed through :class:`~.chain.ChainClient` (f+1 matching
replies), then answered from :class:`~.index.StoreIndex` (the node's store after commit):

=================  =========================================================================
create             ``add`` (Consent: ``grant``); 201 once committed and in the node's store
read / search      ``read`` query (audited on chain), then the store; 403 if the chain refuses
vread / _history   ``read`` with ``history`` (the policy lets only the patient see old versions)
update (If-Match)  ``modify`` naming the version's transaction: the chain refuses a stale one
delete             ``delete`` (Consent: ``revoke``)
transaction        every entry built and signed first, then submitted together (one PBFT batch
                   when they fit), answered with a ``transaction-response``
=================  =========================================================================

The chain's refusal reason is returned as an OperationOutcome coding (``urn:medbench:reason``)
with 403 (permission), 400 (malformed), 409/412 (a version that is no longer live). Anything
unexpected is a 500 OperationOutcome without a trace; hostile input is refused before parsing
(size, content type, JSON depth, ids, query values).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from medbench.access.clients import (
    AuthorityClient,
    GranteeClient,
    Identity,
    PatientClient,
    QueryClient,
)
from medbench.access.request import ALL, AccessRequest, Operation
from medbench.access.scenario import GENESIS_US
from medbench.gateway import fhir, proofs
from medbench.gateway.chain import ChainClient, NoQuorum, Outcome
from medbench.gateway.enrol import user_of_certificate, users_of
from medbench.gateway.fhir import FHIR_JSON, Invalid, outcome
from medbench.gateway.index import Entry, StoreIndex, encode_content, logical_id
from medbench.medchain.validation import request_transaction
from medbench.records.attachments import Attachment
from medbench.runtime.world import World
from medbench.store.blobs import BlobStore

log = logging.getLogger("medbench.gateway")
STATIC = Path(__file__).parent / "static"
MAX_JSON_BYTES = 1 << 20
MAX_BINARY_BYTES = 8 << 20
MAX_DEPTH = 32
MAX_BUNDLE_ENTRIES = 32
US = 1_000_000
PEERS: dict[tuple[str, int], bytes] = {}
"""Client certificate (DER) of each open TLS connection, by (host, port) (see :mod:`.server`)."""

PERMISSION = {
    "role-not-permitted",
    "no-grant",
    "grant-expired",
    "grant-revoked",
    "grant-not-yet-valid",
    "grant-not-permitted",
    "not-grantor",
    "not-authority",
    "out-of-scope",
    "delegation-not-permitted",
    "record-hidden",
    "blacklisted",
    "cert-invalid",
    "cert-expired",
    "cert-revoked",
    "bad-signature",
    "identity-mismatch",
    "missing-signature",
    "missing-countersignature",
    "pseudonym-invalid",
    "unknown-role",
}


class Problem(Exception):
    """An HTTP answer with an OperationOutcome."""

    def __init__(self, status: int, code: str, text: str, reason: str = "") -> None:
        super().__init__(text)
        self.status, self.code, self.text, self.reason = status, code, text, reason


@dataclass
class User:
    """An authenticated user."""

    name: str
    ident: Identity

    @property
    def role(self) -> str:
        """``patient``, ``doctor``, ``institution``, ``authority``."""
        if self.name == "authority":
            return "authority"
        return self.name.rsplit("-", 1)[0].replace("hospital", "institution")


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


class Gateway:
    """One hospital's FHIR front (see the module docstring)."""

    def __init__(
        self,
        *,
        node: int,
        world: World,
        chain: ChainClient,
        index: StoreIndex,
        blobs: BlobStore,
        base: str,
        nodes_status: Callable[[], Awaitable[list[dict[str, Any]]]],
        commit_wait_s: float = 5.0,
    ) -> None:
        self.node = node
        self.world = world
        self.chain = chain
        self.index = index
        self.blobs = blobs
        self.base = base.rstrip("/")
        self.users = users_of(world)
        self.name_of = {u.public_key: n for n, u in self.users.items()}
        self.hospital_of = {f"doctor-{i}": world.hospitals[i] for i in range(len(world.doctors))}
        self.rng = random.Random(os.urandom(32))
        self.clients: dict[str, Any] = {}
        self.metrics = Metrics()
        self.nodes_status = nodes_status
        self.commit_wait_s = commit_wait_s
        self._waiters: dict[bytes, list[asyncio.Future[int]]] = {}  # tx ID -> waiting requests
        self._poller: asyncio.Task[None] | None = None
        self.started = time.time()

    # --- identity and signing ----------------------------------------------------------------
    def user(self, request: Request) -> User:
        client = request.scope.get("client")
        der = PEERS.get((client[0], int(client[1]))) if client else None
        name = user_of_certificate(der) if der else None
        if name is None or name not in self.users:
            raise Problem(401, "login", "a client certificate of the consortium CA is required")
        if name.startswith(("doctor-", "hospital-")) and int(name.rsplit("-", 1)[1]) != self.node:
            raise Problem(
                403,
                "forbidden",
                f"{name}'s signing key is held by its own hospital: use gateway "
                f"{name.rsplit('-', 1)[1]}",
            )
        return User(name, self.users[name])

    def _client(self, user: User) -> Any:
        c = self.clients.get(user.name)
        if c is None:
            privacy = self.world.world.privacy
            ident = user.ident
            if user.role == "patient":
                c = PatientClient(ident, None, self.rng, privacy=privacy)  # type: ignore[arg-type]
            elif user.role == "doctor":
                c = GranteeClient(
                    ident,
                    None,  # type: ignore[arg-type]
                    self.rng,
                    countersigner=self.hospital_of[user.name],
                    privacy=privacy,
                )
            elif user.role == "authority":
                c = AuthorityClient(ident, None, self.rng, privacy=privacy)  # type: ignore[arg-type]
            else:
                c = QueryClient(ident, None, self.rng, privacy=privacy)  # type: ignore[arg-type]
            self.clients[user.name] = c
        return c

    def sign(
        self, user: User, op: Operation, patient: bytes, category: str, body: dict[str, Any]
    ) -> AccessRequest:
        """The user's request, signed with the key the hospital holds for them."""
        at = self.chain.chain_time_us(GENESIS_US)
        countersign = user.role == "doctor" and op in (
            Operation.ADD,
            Operation.MODIFY,
            Operation.DELETE,
            Operation.HIDE,
        )
        req: AccessRequest = self._client(user).request(
            op, patient=patient, category=category, body=body, at_us=at, countersign=countersign
        )
        return req

    async def commit(self, req: AccessRequest, if_match: bool = False) -> Outcome:
        """Submit and wait for f+1 replies; refusals become :class:`Problem`."""
        wire = request_transaction(req).to_wire()
        try:
            out = await self.chain.submit(wire)
        except NoQuorum as exc:
            raise Problem(503, "transient", f"the consortium has no quorum now: {exc}") from None
        if out.accepted:
            self.metrics.commit.observe(out.latency_us / US)
            return out
        self.metrics.refusals.labels(out.code or "unknown").inc()
        raise Problem(*_refusal_status(out, if_match))

    async def indexed(self, tx_id: bytes) -> int:
        """Wait (bounded) until the node's store holds ``tx_id``; its block height (0: not yet).

        One poller task refreshes the index for every waiting request (see :meth:`_poll`): with
        ``c`` creates in flight, polling per request ran ``c`` store queries per round on the event
        loop that also runs the PBFT clients.
        """
        start = time.monotonic()
        self.index.refresh()
        h = self.index.tx_height.get(tx_id, 0)
        if not h:
            fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(tx_id, []).append(fut)
            if self._poller is None or self._poller.done():
                self._poller = asyncio.create_task(self._poll())
            try:
                h = await asyncio.wait_for(fut, self.commit_wait_s)
            except TimeoutError:
                h = 0
                self.metrics.block_timeouts.inc()
            finally:
                futs = self._waiters.get(tx_id, [])
                if fut in futs:
                    futs.remove(fut)
                if not futs:
                    self._waiters.pop(tx_id, None)
        self.metrics.block_wait.observe(time.monotonic() - start)
        self.metrics.height.set(self.index.height)
        return h

    async def _poll(self) -> None:
        """Refresh the index every 2 ms while requests wait; wake those whose block arrived."""
        while self._waiters:
            await asyncio.sleep(0.002)
            self.index.refresh()
            for tx_id in [t for t in self._waiters if t in self.index.tx_height]:
                for fut in self._waiters.pop(tx_id):
                    if not fut.done():
                        fut.set_result(self.index.tx_height[tx_id])

    async def query(self, user: User, patient: bytes, category: str, history: bool = False) -> None:
        """A ``read`` query on chain (audited); raises on refusal."""
        req = self.sign(user, Operation.READ, patient, category, {"history": history})
        await self.commit(req)
        await self.indexed_any()

    async def indexed_any(self) -> None:
        self.index.refresh()

    # --- FHIR views ----------------------------------------------------------------------------
    def view(self, entry: Entry, version: int | None = None) -> dict[str, Any]:
        """The resource of ``entry`` (a version, default the newest) with id and meta."""
        v = entry.versions[(version or len(entry.versions)) - 1]
        if entry.rtype == "Consent":
            res = self._consent(entry, v.resource or {})
        else:
            res = dict(v.resource or {})
        res["id"] = entry.id
        res["meta"] = {
            "versionId": str(v.number),
            "lastUpdated": fhir.instant(v.at_us - GENESIS_US + self._epoch_us()),
            "extension": [
                {"url": fhir.TX_EXT, "valueString": v.tx_id.hex()},
                {"url": fhir.HEIGHT_EXT, "valueInteger": v.height},
            ],
        }
        return res

    def _epoch_us(self) -> int:
        return self.chain.cons.epoch_unix_us

    def _consent(self, entry: Entry, stored: dict[str, Any]) -> dict[str, Any]:
        g = stored.get("_grant", {})
        patient_ids = self.index.patient_of_key.get(entry.patient, [])
        grantee = self.name_of.get(g.get("grantee", b""), "")
        gtype = "Patient" if grantee.startswith("patient") else "Practitioner"
        off = self._epoch_us() - GENESIS_US
        return {
            "resourceType": "Consent",
            "status": g.get("status", "active"),
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient_ids[0]}"}
            if patient_ids
            else {
                "identifier": {
                    "system": fhir.USER_SYSTEM,
                    "value": self.name_of.get(entry.patient, ""),
                }
            },
            "provision": {
                "type": "permit",
                "period": {
                    "start": fhir.instant(g.get("not_before_us", 0) + off),
                    "end": fhir.instant(g.get("not_after_us", 0) + off),
                },
                "actor": [
                    {
                        "role": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                    "code": "PRCP",
                                }
                            ]
                        },
                        "reference": {"reference": f"{gtype}/{grantee}"},
                    }
                ],
                "action": [
                    {"coding": [{"system": fhir.OPS_SYSTEM, "code": o}]} for o in g.get("ops", [])
                ],
                "code": [
                    {"coding": [{"system": fhir.CATEGORY_SYSTEM, "code": c}]}
                    for c in g.get("categories", [])
                ],
            },
        }

    def directory(self, rtype: str, rid: str) -> dict[str, Any] | None:
        """Practitioner / Organization of the consortium's registered identities."""
        ident = self.users.get(rid)
        if ident is None:
            return None
        role = ident.info.role
        if rtype == "Organization" and role == "institution":
            return {
                "resourceType": "Organization",
                "id": rid,
                "active": True,
                "name": rid,
                "identifier": [{"system": fhir.USER_SYSTEM, "value": rid}],
                "meta": {"versionId": "1"},
            }
        if rtype == "Practitioner" and (role == "doctor" or rid == "authority"):
            return {
                "resourceType": "Practitioner",
                "id": rid,
                "active": True,
                "name": [{"text": rid}],
                "identifier": [{"system": fhir.USER_SYSTEM, "value": rid}],
                "qualification": [{"code": {"text": role}}],
                "meta": {"versionId": "1"},
            }
        return None

    def patient_key(self, ref: Any) -> bytes:
        """The chain key of the patient a Reference names (``Patient/<id>`` or identifier)."""
        if isinstance(ref, dict):
            ident = ref.get("identifier")
            if isinstance(ident, dict) and ident.get("system") == fhir.USER_SYSTEM:
                return self._enrolled_patient(ident.get("value"))
            ref = ref.get("reference")
        if isinstance(ref, str):
            ref = ref.removeprefix(self.base + "/")
            kind, _, rid = ref.partition("/")
            if kind == "Patient" and fhir.ID_RE.match(rid):
                e = self.index.get("Patient", rid)
                if e is not None and e.current.resource is not None:
                    return e.patient
                if rid in self.users and rid.startswith("patient-"):
                    return self.users[rid].public_key
                raise Problem(400, "invalid", f"unknown patient {ref}")
        raise Problem(400, "invalid", "a reference to Patient/<id> is required")

    def _enrolled_patient(self, value: Any) -> bytes:
        if isinstance(value, str) and value.startswith("patient-") and value in self.users:
            return self.users[value].public_key
        raise Problem(400, "invalid", "the identifier must name an enrolled patient (patient-<i>)")


def _refusal_status(out: Outcome, if_match: bool) -> tuple[int, str, str, str]:
    code = out.code
    if code == "unknown-record":
        return (412 if if_match else 409), "conflict", f"refused by the chain: {out.reason}", code
    if code in ("replayed", "duplicate-record"):
        return 409, "conflict", f"refused by the chain: {out.reason}", code
    if code in PERMISSION:
        return 403, "forbidden", f"refused by the chain: {out.reason}", code
    return 400, "invalid", f"refused by the chain: {out.reason}", code or "malformed"


# --- request helpers --------------------------------------------------------------------------
def _depth_ok(value: Any) -> bool:
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


async def _body(request: Request, limit: int) -> bytes:
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


async def _json(request: Request) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in (FHIR_JSON, "application/json"):
        raise Problem(415, "not-supported", f"content type must be {FHIR_JSON}")
    data = await _body(request, MAX_JSON_BYTES)
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise Problem(400, "structure", "the body is not valid JSON") from None
    if not _depth_ok(doc):
        raise Problem(400, "too-costly", f"JSON nested deeper than {MAX_DEPTH}")
    return doc


def _rtype(request: Request, allowed: tuple[str, ...] = fhir.ALL_TYPES) -> str:
    rtype = str(request.path_params.get("type", ""))
    if rtype not in allowed:
        raise Problem(404, "not-supported", f"resource type {rtype[:40]!r} is not served here")
    return rtype


def _rid(request: Request, key: str = "id") -> str:
    rid = str(request.path_params.get(key, ""))
    if not fhir.ID_RE.match(rid):
        raise Problem(400, "value", "malformed id")
    return rid


def _int_param(request: Request, key: str, default: int, lo: int, hi: int) -> int:
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


def build_app(gw: Gateway) -> Starlette:
    """The Starlette application of ``gw``."""

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

    # --- FHIR -------------------------------------------------------------------------------------
    async def metadata(request: Request) -> Response:
        return fhir_response(fhir.capability(gw.base, fhir.instant(int(gw.started * US))))

    async def create(request: Request) -> Response:
        rtype = _rtype(request)
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
        doc = await _json(request)
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
        off = gw._epoch_us() - GENESIS_US
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
            doc = fhir.validate("Binary", await _json(request))
            try:
                data = base64.b64decode(doc.get("data", ""), validate=True)
            except ValueError:
                raise Problem(400, "value", "Binary.data is not base64") from None
            media = str(doc.get("contentType", "")).lower()
            ref = doc.get("securityContext")
        else:
            data = await _body(request, MAX_BINARY_BYTES)
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
        rtype, rid = _rtype(request), _rid(request)
        user = gw.user(request)
        if rtype in fhir.DIRECTORY_TYPES:
            doc = gw.directory(rtype, rid)
            if doc is None:
                raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
            return fhir_response(doc)
        if rtype == "Binary":
            return await read_binary(request, user, rid)
        if rtype == "AuditEvent":
            row = next((a for a in gw.index.audits if a.id == rid), None)
            if row is None or not audit_visible(user, row):
                raise Problem(404, "not-found", f"AuditEvent/{rid} is not known")
            return fhir_response(audit_event(row))
        gw.index.refresh()
        entry = gw.index.get(rtype, rid)
        if entry is None:
            raise Problem(404, "not-found", f"{rtype}/{rid} is not known")
        if rtype == "Consent":
            consent_visible(user, entry)
        else:
            await gw.query(user, entry.patient, fhir.category_of(rtype))
        if entry.current.resource is None:
            raise Problem(410, "deleted", f"{rtype}/{rid} was deleted")
        return fhir_response(gw.view(entry), headers={"ETag": f'W/"{entry.current.number}"'})

    def consent_visible(user: User, entry: Entry) -> None:
        g = (entry.current.resource or {}).get("_grant", {})
        if user.role == "authority" or user.ident.public_key in (entry.patient, g.get("grantee")):
            return
        raise Problem(
            403, "forbidden", "a Consent is shown to its patient, its actor and authorities"
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
        rtype, rid = _rtype(request, fhir.ALL_TYPES), _rid(request)
        vid = _rid(request, "vid")
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
            consent_visible(user, entry)
        else:
            await gw.query(user, entry.patient, fhir.category_of(rtype), n != len(entry.versions))
        if entry.versions[n - 1].resource is None:
            raise Problem(410, "deleted", "this version is a deletion")
        return fhir_response(gw.view(entry, n), headers={"ETag": f'W/"{n}"'})

    async def history(request: Request) -> Response:
        rtype, rid = _rtype(request), _rid(request)
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
            consent_visible(user, entry)
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
        rtype = _rtype(request)
        user = gw.user(request)
        count = _int_param(request, "_count", 20, 1, fhir.MAX_COUNT)
        offset = _int_param(request, "_offset", 0, 0, 10_000_000)
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
            gw.index.refresh()
            rows = [a for a in gw.index.audits if audit_visible(user, a)]
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
                gw.index.refresh()
                entries = [e for e in gw.index.iter_type("Consent") if e.patient == patient]
                entries = [e for e in entries if _visible(consent_visible, user, e)]
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

    def audit_visible(user: User, row: Any) -> bool:
        if user.role == "authority":
            return True
        if row.kind == "blacklist":
            return False
        return user.ident.public_key in (row.patient, row.requester)

    def audit_event(row: Any) -> dict[str, Any]:
        who = gw.name_of.get(row.requester, row.requester.hex()[:16])
        who_type = "Patient" if who.startswith("patient") else "Practitioner"
        patient_ids = gw.index.patient_of_key.get(row.patient, [])
        ok = row.outcome in ("accepted", "allowed", "ok")
        off = gw._epoch_us() - GENESIS_US
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
        rtype, rid = _rtype(request, fhir.RECORD_TYPES), _rid(request)
        user = gw.user(request)
        doc = await _json(request)
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
        rtype, rid = _rtype(request, (*fhir.RECORD_TYPES, "Consent")), _rid(request)
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
        doc = await _json(request)
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

    # --- chain endpoints --------------------------------------------------------------------------
    def plain(route: str, fn: Callable[[Request], Awaitable[Response]]) -> Any:
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

    def validators() -> list[bytes]:
        return [m.validator_key for m in gw.chain.cons.members]

    async def blocks(request: Request) -> Response:
        limit = _int_param(request, "limit", 10, 1, 100)
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
            first = _int_param(request, "first", 1, 1, 1 << 40)
            second = _int_param(request, "second", height, 1, 1 << 40)
        except Problem as p:
            return JSONResponse({"error": p.text}, 400)
        if not first <= second or second - first > proofs.MAX_SPAN:
            return JSONResponse(
                {"error": f"need first <= second <= first + {proofs.MAX_SPAN}"}, 400
            )
        if second > height:
            return JSONResponse({"error": f"the chain has height {height}"}, 404)
        return JSONResponse(proofs.consistency_doc(gw.index.blocks, first, second, validators()))

    # --- dashboard, metrics, OpenAPI -----------------------------------------------------------
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

    routes = [
        Route("/fhir/metadata", handler("metadata", metadata), methods=["GET"]),
        Route("/fhir", handler("transaction", transaction), methods=["POST"]),
        Route("/fhir/{type}", handler("search", search), methods=["GET"]),
        Route("/fhir/{type}", handler("create", create), methods=["POST"]),
        Route("/fhir/{type}/{id}", handler("read", read), methods=["GET"]),
        Route("/fhir/{type}/{id}", handler("update", update), methods=["PUT"]),
        Route("/fhir/{type}/{id}", handler("delete", delete), methods=["DELETE"]),
        Route("/fhir/{type}/{id}/_history", handler("history", history), methods=["GET"]),
        Route("/fhir/{type}/{id}/_history/{vid}", handler("vread", vread), methods=["GET"]),
        Route("/chain/blocks", plain("blocks", blocks), methods=["GET"]),
        Route("/chain/blocks/{height}", plain("block", block), methods=["GET"]),
        Route("/chain/transactions/{tx}/proof", plain("inclusion", inclusion), methods=["GET"]),
        Route("/chain/consistency", plain("consistency", consistency), methods=["GET"]),
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/api/status", plain("status", status), methods=["GET"]),
        Route("/dashboard/{name}", static, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 404)
        return fhir_response(
            outcome(
                "error",
                "not-found" if code == 404 else "not-supported",
                "no such endpoint" if code == 404 else "method not allowed",
            ),
            code,
        )

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def _visible(check: Callable[..., None], *args: Any) -> bool:
    try:
        check(*args)
    except Problem:
        return False
    return True


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


def _pct(values: list[int], p: float) -> float:
    if not values:
        return 0.0
    return float(values[min(int(p * len(values)), len(values) - 1)])


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
