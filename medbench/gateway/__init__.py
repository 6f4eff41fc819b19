"""A FHIR R4 REST gateway in front of one hospital node, the chain endpoints and a dashboard.

Theory of operation
-------------------
Hospitals' EMR systems speak FHIR over HTTP, not msgpack to a PBFT replica. ``medbench gateway
run`` is the front each hospital runs beside its node (:mod:`medbench.runtime`): it translates
FHIR interactions into Medical Chain transactions and the chain's answers back into FHIR. It is a
*front*: every decision is the validators' (:class:`medbench.medchain.validation.AccessValidator`
on every replica, agreed by PBFT); the gateway never allows or refuses access on its own, it
returns the validator's typed reason (:class:`medbench.access.Reason`) in an OperationOutcome.

* :mod:`.enrol` — client certificates of the consortium CA for users (staff, patients,
  authorities), the gateways' HTTPS certificates and PBFT client identities;
* :mod:`.chain` — a pool of PBFT clients over mutual TLS: a write or query counts as committed
  at f+1 matching replies;
* :mod:`.index` — reads: the node's SQLite store after commit, opened and indexed as FHIR;
* :mod:`.fhir` — validation (``fhir.resources``), OperationOutcome, Bundle, CapabilityStatement,
  the OpenAPI document;
* :mod:`.app` — the Starlette application (FHIR, chain endpoints, dashboard, metrics);
* :mod:`.proofs` — inclusion and consistency proofs that ``medbench verify --proof`` checks;
* :mod:`.server` — the process (uvicorn, TLS with optional client certificates, retention);
* :mod:`.processes` — ``gateway up | down``: a consortium with its gateways on this host;
* :mod:`.bench` — FHIR create/read load at 1/16/64 connections against direct submission.

How a user's signature is produced
----------------------------------
A Medical Chain transaction must carry its requester's Ed25519 signature over the transaction
ID, a doctor's record change also the hospital's countersignature (docs/medical-chain.md §1.2),
and it travels sealed to the consortium access key, patients signing under one-day pseudonyms
(§1.6). **The gateway signs for the user with keys the hospital holds for them** (a custodial
signing service, as an HSM-backed hospital system would be): the user proves who they are with
a TLS client certificate of the consortium CA (``urn:medbench:user:<name>``), and the gateway
builds, signs, countersigns and seals the request exactly as the user's own client would
(:class:`medbench.access.clients.PatientClient` / ``GranteeClient``). Why: standard FHIR clients
(SMART's ``fhirclient``, ``fhirpy``, an EMR) cannot produce Medical Chain signatures — Ed25519 over
the canonical transaction encoding, the hospital's countersignature, the sealed envelope and the
pseudonym — and the doctor's record changes need the hospital's key anyway, which only the
hospital holds. What it costs: a hospital could sign in its staff's name; every such signature is
on chain, judged by every validator and audited (§1.3), and staff keys are used only by their
own hospital's gateway (a doctor of hospital 1 is refused by gateway 0). Requests signed by the
client (a patient's phone, §1.5) remain possible directly against the nodes, like the load
generator does; the gateway does not accept pre-signed transactions.

In this kit every process rebuilds the simulated users from the consortium's ``access_seed``
(:mod:`medbench.runtime.world`), so the "keys the hospital holds" are derived, not enrolled
through the KMC: a deployment would load them from the hospital's key store instead.

Layering: a front beside the command line's demos and study; it may import the runtime, the
Medical Chain node, records, access, ledger and store; only :mod:`medbench.cli` imports it.
"""
