"""One hospital's gateway: its users, chain client, store index and blob store, and how it signs
for its users (the HTTP routes are :mod:`.fhir_routes`, :mod:`.chain_routes` and
:mod:`.dashboard`, assembled by :mod:`.app`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request

from medbench.access.clients import (
    AuthorityClient,
    GranteeClient,
    Identity,
    PatientClient,
    QueryClient,
)
from medbench.access.request import AccessRequest, Operation
from medbench.access.scenario import GENESIS_US
from medbench.gateway import fhir
from medbench.gateway.chain import ChainClient, NoQuorum, Outcome
from medbench.gateway.enrol import user_of_certificate, users_of
from medbench.gateway.index import Entry, StoreIndex
from medbench.gateway.metrics import Metrics
from medbench.medchain.validation import request_transaction
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
    "not-permitted",
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
        raise Problem(*refusal_status(out, if_match))

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

    async def visibility(self, user: User, scope: str, patient: bytes = b"") -> None:
        """A visibility query on chain (a ``read`` whose category is ``scope``, one of
        :data:`~medbench.access.request.VISIBILITY_SCOPES`; audited): the validators, not this
        gateway, decide whether ``user`` may see those Consents or audit records
        (docs/medical-chain.md §1.6, "Who sees the permissions"); raises 403 with the chain's
        reason on refusal."""
        req = self.sign(user, Operation.READ, patient, scope, {"history": False})
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
            "lastUpdated": fhir.instant(v.at_us - GENESIS_US + self.epoch_us()),
            "extension": [
                {"url": fhir.TX_EXT, "valueString": v.tx_id.hex()},
                {"url": fhir.HEIGHT_EXT, "valueInteger": v.height},
            ],
        }
        return res

    def epoch_us(self) -> int:
        """The consortium's epoch (Unix microseconds): chain times are counted from it."""
        return self.chain.cons.epoch_unix_us

    def _consent(self, entry: Entry, stored: dict[str, Any]) -> dict[str, Any]:
        g = stored.get("_grant", {})
        patient_ids = self.index.patient_of_key.get(entry.patient, [])
        grantee = self.name_of.get(g.get("grantee", b""), "")
        gtype = "Patient" if grantee.startswith("patient") else "Practitioner"
        off = self.epoch_us() - GENESIS_US
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


def refusal_status(out: Outcome, if_match: bool) -> tuple[int, str, str, str]:
    """The HTTP status, issue code, text and reason of a chain refusal (403 for permissions,
    409/412 for versions that are no longer live, 400 otherwise)."""
    code = out.code
    if code == "unknown-record":
        return (412 if if_match else 409), "conflict", f"refused by the chain: {out.reason}", code
    if code in ("replayed", "duplicate-record"):
        return 409, "conflict", f"refused by the chain: {out.reason}", code
    if code in PERMISSION:
        return 403, "forbidden", f"refused by the chain: {out.reason}", code
    return 400, "invalid", f"refused by the chain: {out.reason}", code or "malformed"
