"""Issue 5 on the running chain: identity and permission rules through PBFT on four nodes.

Every test here drives real :class:`~medbench.medchain.MedicalChainNode` replicas (PBFT +
:class:`~medbench.medchain.AccessValidator` + SQLite) and asserts what each of the four nodes'
chain state holds once the requests are committed — not what the in-memory ``LocalChain`` says.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st
from medchain_helpers import care_session, deploy

from medbench import codec
from medbench.access.clients import GranteeClient, Identity
from medbench.access.decision import Allowed
from medbench.access.request import Operation, seal_draft
from medbench.access.scenario import GENESIS_US
from medbench.access.validator import CertificateRule, SignatureRule, Validator
from medbench.consensus.pbft.messages import Request
from medbench.crypto.errors import SealError
from medbench.crypto.keys import Scheme, SigningKey
from medbench.crypto.sealing import EncryptionKey, open_sealed
from medbench.ledger import Kind, Transaction
from medbench.medchain import RECORD_SPECS, Deployment, draft_transaction, request_transaction
from medbench.pki.ca import CertificateAuthority, crl_draft
from medbench.pki.certpath import verify_chain
from medbench.pki.drafts import certificate_draft
from medbench.pki.kmc import IdentityAttestation, KmcError
from medbench.pki.rekey import rotate_subject, succession_draft

FAST = {"block_size": 8, "block_interval_us": 50_000, "checkpoint_interval": 4, "log_window": 16}
HOUR_US = 3600 * 1_000_000


def results(net: Any, client: int) -> list[list[Any]]:
    """Decoded replies ``client`` received, in order (a refusal before ordering as
    ``["refused", code]``, like one at execution)."""
    return [
        ["refused", c.refusal] if c.refusal else codec.decode(c.result)
        for c in net.completed
        if c.client == client
    ]


def settle(net: Any, us: int = 1_500_000) -> None:
    """Let requests, the records they cause and the blocks listing them commit."""
    net.run(us)


def grant_wire(dep: Deployment, patient: int, doctor: int, at_us: int, **window: int) -> bytes:
    """Patient ``patient`` grants doctor ``doctor`` read/add on everything."""
    p, d = dep.patient_client(patient), dep.doctor_client(doctor)
    body = {
        "grantee": d.public_key,
        "ops": ["add", "read"],
        "categories": ["*"],
        "not_before_us": window.get("nb", at_us),
        "not_after_us": window.get("na", at_us + HOUR_US),
    }
    req = p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=at_us)
    return request_transaction(req).to_wire()


def read_wire(dep: Deployment, doctor: int, patient: int, at_us: int) -> Transaction:
    """Doctor ``doctor`` reads patient ``patient``'s current records."""
    d, p = dep.doctor_client(doctor), dep.patient_client(patient)
    req = d.request(Operation.READ, patient=p.public_key, body={"history": False}, at_us=at_us)
    return request_transaction(req)


def node_record(dep: Deployment, node: int, content: dict[str, Any], kind: Kind) -> bytes:
    """A record signed by node ``node``'s validator key (as a Byzantine node would write it)."""
    return Transaction.create(
        kind, codec.encode(content), GENESIS_US + 3, [dep.setups[node].key]
    ).to_wire()


# --- 1. the blacklist cannot be forged by one node ------------------------------------------------


def test_byzantine_node_cannot_blacklist_an_honest_doctor(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, users=9, **FAST)
    users = dep.user_ids
    victim = dep.doctors[1].public_key
    net.submit(users[0], grant_wire(dep, 1, 1, GENESIS_US + 1))
    settle(net)
    honest_read = read_wire(dep, 1, 1, GENESIS_US + 2)
    net.submit(users[1], honest_read.to_wire())
    settle(net)
    assert [r[0] for r in results(net, users[1])] == ["accepted"]
    # a request "signed" by the victim that the victim never signed: a wrong signature
    forged = Transaction(
        honest_read.kind,
        honest_read.content,
        honest_read.timestamp_us + 1,
        honest_read.public_keys,
        (bytes(64),),
    )
    fabricated = [
        # the probe's record: no evidence at all
        {"type": "blacklist", "request": bytes([i]) * 32, "subject": victim, "reason": "no-grant"}
        for i in range(3)
    ] + [
        # the victim's own accepted read cited as a refusal
        {
            "type": "blacklist",
            "subject": victim,
            "request": honest_read.id,
            "operation": "read",
            "patient": dep.patients[1].public_key,
            "reason": "no-grant",
            "evidence": honest_read.to_wire(),
        },
        # a forged request in the victim's name
        {
            "type": "blacklist",
            "subject": victim,
            "request": forged.id,
            "operation": "read",
            "patient": dep.patients[1].public_key,
            "reason": "no-grant",
            "evidence": forged.to_wire(),
        },
    ]
    # node 3 is Byzantine: it signs the fabrications and sends each through its own PBFT client
    # (a client has one request outstanding, and a refused one never completes)
    wires = [node_record(dep, 3, content, Kind.ADD) for content in fabricated]
    for client, wire in zip(users[4:], wires, strict=True):
        net.submit(client, wire)
    settle(net, 3_000_000)
    again = read_wire(dep, 1, 1, GENESIS_US + 10)
    net.submit(users[2], again.to_wire())
    settle(net)
    assert results(net, users[2]) == [["accepted", again.id]]
    for i in range(4):
        state = dep.nodes[i].access.state
        assert state.blacklist == {} and state.blacklist_records == []
    # every honest replica refuses every fabrication with a typed reason, so none is ordered
    for wire in wires:
        assert all((r or "").startswith("unproven-record") for r in hook(dep, wire))
    assert all(results(net, c) == [["refused", "unproven-record"]] for c in users[4:])


def test_a_real_refusal_still_blacklists_on_every_node(tmp_path: Path) -> None:
    """Positive control: the honest record carries its evidence and every replica re-derives it."""
    dep, net = deploy(tmp_path, **FAST)
    tx = read_wire(dep, 0, 2, GENESIS_US + 5)  # doctor 0 has no grant from patient 2
    net.submit(dep.user_ids[0], tx.to_wire())
    settle(net)
    for i in range(4):
        state = dep.nodes[i].access.state
        assert state.blacklist == {dep.doctors[0].public_key: 1}
        (record,) = state.blacklist_records
        assert record.content["evidence"] == tx.to_wire()
        assert record.content["reason"] == "no-grant"
        (audit,) = [a for a in state.audit if a.content["request"] == tx.id]
        assert audit.content["outcome"] == "no-grant"


# --- 2. time: the stamp is bounded on both sides -------------------------------------------------

TIGHT = {**FAST, "max_age_us": 200_000, "max_lead_us": 200_000}


def test_backdating_into_an_expired_grant_window_is_refused(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **TIGHT)
    users = dep.user_ids
    net.submit(users[0], grant_wire(dep, 0, 0, GENESIS_US + 1, na=GENESIS_US + 300_000))
    net.run(1_000_000)  # every replica's clock is now ~0.7 s past the grant's end
    assert [r[0] for r in results(net, users[0])] == ["accepted"]
    back = read_wire(dep, 0, 0, GENESIS_US + 100_000)  # inside the window, a second "ago"
    net.submit(users[1], back.to_wire())
    settle(net)
    assert results(net, users[1]) == [["refused", "stale-timestamp"]]  # refused, never ordered
    assert dep.nodes[0].access.refusals["stale-timestamp"] >= 1
    now = read_wire(dep, 0, 0, GENESIS_US + net.now)  # honestly stamped: the grant has expired
    net.submit(users[2], now.to_wire())
    settle(net)
    for i in range(4):
        state = dep.nodes[i].access.state
        assert back.id not in state.seen and now.id not in state.seen
        assert [r.content["reason"] for r in state.blacklist_records] == ["grant-expired"]


def test_future_dating_into_a_grant_not_yet_valid_is_refused_even_by_a_byzantine_primary(
    tmp_path: Path,
) -> None:
    dep, net = deploy(tmp_path, **TIGHT)
    users = dep.user_ids
    start = GENESIS_US + HOUR_US
    net.submit(users[0], grant_wire(dep, 0, 0, GENESIS_US + 1, nb=start, na=start + HOUR_US))
    settle(net)
    assert [r[0] for r in results(net, users[0])] == ["accepted"]
    ahead = read_wire(dep, 0, 0, start + 5)
    net.submit(users[1], ahead.to_wire())
    settle(net)
    assert results(net, users[1]) == [["refused", "future-timestamp"]]
    assert dep.nodes[0].access.refusals["future-timestamp"] >= 1
    # a Byzantine primary admits anything: the honest backups' clocks still refuse to prepare it
    dep.nodes[0].replica.validator = lambda request: None
    ahead2 = read_wire(dep, 0, 0, start + 6)
    net.submit(users[2], ahead2.to_wire())
    net.run(3_000_000)
    assert results(net, users[2]) == [["refused", "future-timestamp"]]  # by the backups
    for i in range(4):
        seen = dep.nodes[i].access.state.seen
        assert ahead.id not in seen and ahead2.id not in seen
    assert all(dep.nodes[i].access.refusals["future-timestamp"] >= 1 for i in (1, 2, 3))


def test_a_stamp_before_a_grant_revocation_on_chain_is_refused_on_every_node(
    tmp_path: Path,
) -> None:
    """The revocation floor is deterministic: no clock needed, every replica refuses alike."""
    dep, net = deploy(tmp_path, **FAST)  # a 10-minute clock window: the floor does the work
    users = dep.user_ids
    grant = grant_wire(dep, 0, 0, GENESIS_US + 1)
    net.submit(users[0], grant)
    settle(net)
    p = dep.patient_client(0)
    gid = Transaction.from_wire(grant).id
    revoke = p.request(
        Operation.REVOKE, patient=p.public_key, body={"grant": gid}, at_us=GENESIS_US + 500_000
    )
    net.submit(users[0], request_transaction(revoke).to_wire())
    settle(net)
    assert [r[0] for r in results(net, users[0])] == ["accepted", "accepted"]
    back = read_wire(dep, 0, 0, GENESIS_US + 400_000)  # while the grant was still active
    for i in range(4):
        reason = dep.nodes[i].access(Request(99, 1, back.to_wire()))
        assert reason is not None and reason.startswith("stale-timestamp: predates a revocation")
    net.submit(users[1], back.to_wire())
    late = read_wire(dep, 0, 0, GENESIS_US + 600_000)
    net.submit(users[2], late.to_wire())
    settle(net)
    for i in range(4):
        state = dep.nodes[i].access.state
        assert back.id not in state.seen and late.id not in state.seen
        assert [r.content["reason"] for r in state.blacklist_records] == ["grant-revoked"]


# --- 3. CRLs, certificates, policy and KMC releases go on chain through PBFT ----------------------

S = 1_000_000


def hook(dep: Deployment, wire: bytes) -> list[str | None]:
    """Each of the four replicas' validator verdict on ``wire`` (no state change)."""
    return [dep.nodes[i].access(Request(99, 1, wire)) for i in range(4)]


def test_a_crl_committed_through_pbft_revokes_a_doctor_on_every_node(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    users = dep.user_ids
    for op in care_session(dep, 0, 2, GENESIS_US + 1):
        net.submit(users[0], op)
    net.run(2_100_000)  # past the second the CA revokes in (X.509 times are whole seconds)
    assert [r[0] for r in results(net, users[0])] == ["accepted"] * 4
    doctor = dep.doctors[0]
    ca = dep.world.cas[doctor.info.region]
    revoked_at = GENESIS_US + 2 * S
    ca.revoke(x509.load_der_x509_certificate(doctor.chain[0]), revoked_at)
    draft = crl_draft(
        ca,
        dep.world.ca_chain(doctor.info.region),
        at_us=revoked_at,
        next_update_us=revoked_at + HOUR_US,
    )
    crl = draft_transaction(draft, dep.setups[1].key)  # node 1 relays the CA's CRL
    # a CRL signed by a CA outside the consortium's tree is refused by every replica
    rogue = CertificateAuthority.create_root(
        random.Random(9), "cn", not_before_us=GENESIS_US, not_after_us=revoked_at * 2
    )
    fake = crl_draft(rogue, (rogue.cert_der,), at_us=revoked_at, next_update_us=revoked_at + S)
    assert all(
        (r or "").startswith("bad-crl")
        for r in hook(dep, draft_transaction(fake, dep.setups[2].key).to_wire())
    )
    net.submit(users[1], crl.to_wire())
    settle(net)
    assert results(net, users[1]) == [["accepted", crl.id]]
    d, p = dep.doctor_client(0), dep.patient_client(0)

    def add(at_us: int) -> Transaction:
        req = d.request(
            Operation.ADD,
            patient=p.public_key,
            category="lab",
            body={"content": b"after"},
            at_us=at_us,
            countersign=True,
        )
        return request_transaction(req)

    after, before = add(revoked_at + 5), add(revoked_at - S // 2)
    assert all((r or "").startswith("cert-revoked") for r in hook(dep, after.to_wire()))
    assert all(
        (r or "").startswith("stale-timestamp: predates") for r in hook(dep, before.to_wire())
    )
    net.submit(users[2], after.to_wire())
    net.submit(users[3], before.to_wire())
    settle(net)
    checker = Validator(rules=[CertificateRule(), SignatureRule()])
    for i in range(4):
        node = dep.nodes[i]
        state = node.access.state
        assert len(state.revocations.entries) == 1
        assert after.id not in state.seen and before.id not in state.seen
        assert crl.id in {t for b in node.ledger.blocks() for t in b.tx_ids}
        # the doctor's earlier records stay verifiable as of their time
        earlier = [
            node.ledger[t]
            for b in node.ledger.blocks()
            for t in b.tx_ids
            if node.ledger[t].author == doctor.public_key
        ]
        assert len(earlier) == 2
        for tx in earlier:
            verify_chain(doctor.chain, state.anchors, tx.timestamp_us, state.revocations)
            req = node.access.judge(tx.to_wire()).request
            assert req is not None and isinstance(checker.check(req, state), Allowed)
        assert node.verify(dep.signer_policy()).ok


def test_emergency_access_leaves_the_audit_and_the_kmc_release_on_chain(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    users, kmc = dep.user_ids, dep.world.kmc
    patient = dep.patients[2]
    nha = dep.authority_client()
    emergency = request_transaction(
        nha.request(
            Operation.EMERGENCY,
            patient=patient.public_key,
            body={"reason": "unconscious"},
            at_us=GENESIS_US + 1,
        )
    )
    doc = dep.doctor_client(2)  # a doctor has no emergency access
    refused = request_transaction(
        doc.request(
            Operation.EMERGENCY,
            patient=patient.public_key,
            body={"reason": "x"},
            at_us=GENESIS_US + 2,
        )
    )
    net.submit(users[0], emergency.to_wire())
    net.submit(users[1], refused.to_wire())
    settle(net)
    assert results(net, users[0]) == [["accepted", emergency.id]]
    view = dep.nodes[0].access.state  # the KMC operator reads the committed chain
    for bad in (refused.id, b"\x07" * 32):
        with pytest.raises(KmcError, match="not an accepted emergency"):
            kmc.emergency_release(patient.info.id_hash, nha.public_key, bad, GENESIS_US + 3, view)
    with pytest.raises(KmcError, match="another key"):
        kmc.emergency_release(
            patient.info.id_hash, doc.public_key, emergency.id, GENESIS_US + 3, view
        )
    keys, draft = kmc.emergency_release(
        patient.info.id_hash, nha.public_key, emergency.id, GENESIS_US + 3, view
    )
    assert keys.signing_public == patient.public_key
    release = draft_transaction(draft, dep.kmc_key())
    # only the KMC writes releases, and only for an accepted emergency request
    by_node = draft_transaction(draft, dep.setups[0].key)
    assert all((r or "").startswith("record-not-by-a-writer") for r in hook(dep, by_node.to_wire()))
    forged = dict(draft.content, justification=refused.id)
    forged_tx = Transaction.create(
        Kind.QUERY, codec.encode(forged), GENESIS_US + 3, [dep.kmc_key()]
    )
    assert all((r or "").startswith("unproven-record") for r in hook(dep, forged_tx.to_wire()))
    net.submit(users[2], release.to_wire())
    settle(net)
    assert results(net, users[2]) == [["accepted", release.id]]
    for i in range(4):
        node = dep.nodes[i]
        state = node.access.state
        listed = {t for b in node.ledger.blocks() for t in b.tx_ids}
        assert {emergency.id, release.id} <= listed
        (audit,) = [a for a in state.audit if a.content["request"] == emergency.id]
        assert audit.content["operation"] == "emergency" and audit.content["outcome"] == "allowed"
        (rel,) = state.emergency_releases
        assert rel.content["justification"] == emergency.id
        assert rel.content["authority"] == nha.public_key
        assert refused.id not in state.emergencies


def test_a_certificate_registered_through_pbft_lets_its_key_act(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST)
    users = dep.user_ids
    new = dep.world.issue(
        "doctor-new",
        "doctor",
        dep.doctors[0].info.region,
        institution="hospital-0",
        at_us=GENESIS_US,
    )
    client = dep.client(new)
    p = dep.patient_client(0)
    body = {
        "grantee": new.public_key,
        "ops": ["read"],
        "categories": ["*"],
        "not_before_us": GENESIS_US,
        "not_after_us": GENESIS_US + HOUR_US,
    }
    grant = request_transaction(
        p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=GENESIS_US + 20)
    )
    assert all((r or "").startswith("unknown-subject") for r in hook(dep, grant.to_wire()))

    def read(at_us: int) -> Transaction:
        return request_transaction(
            client.request(
                Operation.READ, patient=p.public_key, body={"history": False}, at_us=at_us
            )
        )

    assert all(
        (r or "").startswith("cert-invalid") for r in hook(dep, read(GENESIS_US + 1).to_wire())
    )
    garbage = Transaction.create(
        Kind.REGISTER,
        codec.encode({"type": "certificate", "chain": [b"not der"]}),
        GENESIS_US + 1,
        [dep.setups[0].key],
    )
    assert all((r or "").startswith("cert-invalid") for r in hook(dep, garbage.to_wire()))
    # the subject registers its own certificate (a node could too)
    own = Transaction.create(
        Kind.REGISTER,
        codec.encode(certificate_draft(new.chain, GENESIS_US + 2).content),
        GENESIS_US + 2,
        [signing_key_of(new)],
    )
    net.submit(users[0], own.to_wire())
    settle(net)
    assert results(net, users[0]) == [["accepted", own.id]]
    again = draft_transaction(
        certificate_draft(dep.doctors[1].chain, GENESIS_US + 3), dep.setups[0].key
    )
    net.submit(users[1], again.to_wire())  # already registered at genesis: a duplicate
    net.submit(users[2], grant.to_wire())
    settle(net)
    assert results(net, users[1]) == [["refused", "duplicate-record"]]
    r = read(GENESIS_US + 30)
    net.submit(users[3], r.to_wire())
    settle(net)
    assert results(net, users[3]) == [["accepted", r.id]]
    for i in range(4):
        access = dep.nodes[i].access
        assert access.state.identities[new.public_key].role == "doctor"
        assert access.chains[new.public_key] == new.chain
        assert r.id in access.state.seen


def signing_key_of(ident: Identity) -> SigningKey:
    """The ledger SigningKey of an access identity (the same Ed25519 secret)."""
    return SigningKey.generate(Scheme.ED25519, seed=ident.keys.signing.private_bytes_raw())


_VALUES = st.one_of(
    st.binary(max_size=40),
    st.integers(-5, 5),
    st.lists(st.binary(max_size=20), max_size=3),
    st.text(max_size=5),
    st.none(),
)


@pytest.fixture(scope="module")
def hostile_dep(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    dep, _ = deploy(tmp_path_factory.mktemp("records"))
    return dep


@settings(max_examples=150, deadline=None)
@given(
    rtype=st.sampled_from(sorted(RECORD_SPECS)),
    kind=st.sampled_from(list(Kind)),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "request",
                "subject",
                "evidence",
                "crl",
                "issuer_chain",
                "chain",
                "document",
                "authority",
                "justification",
                "version",
                "reason",
            ]
        ),
        _VALUES,
        max_size=6,
    ),
    signer=st.sampled_from(["node", "kmc", "root"]),
)
def test_hostile_records_are_refused_never_raise(
    hostile_dep: Deployment, rtype: str, kind: Kind, fields: dict[str, Any], signer: str
) -> None:
    """Every record type with arbitrary fields, signed by any writer: a reason, never a crash."""
    dep = hostile_dep
    key = {
        "node": dep.setups[0].key,
        "kmc": dep.kmc_key(),
        "root": signing_key_of(dep.world.national_authority),
    }[signer]
    tx = Transaction.create(kind, codec.encode({**fields, "type": rtype}), GENESIS_US, [key])
    access = dep.nodes[2].access
    before = (
        len(access.state.revocations.entries),
        len(access.state.identities),
        access.state.policy,
        len(access.state.blacklist_records),
    )
    req = Request(99, 1, tx.to_wire())
    reason = access(req)
    assert isinstance(reason, str) and reason  # nothing random proves itself
    assert codec.decode(access.service(req))[0] == "refused"
    after = (
        len(access.state.revocations.entries),
        len(access.state.identities),
        access.state.policy,
        len(access.state.blacklist_records),
    )
    assert after == before


# --- 4. RBAC as data: the published document decides ----------------------------------------------


def publish_policy(dep: Deployment, net: Any, client: int, change: Any, at_us: int) -> None:
    """The root authority publishes the current document after ``change(doc)``, through PBFT."""
    import copy

    from medbench.access.rbac import Policy, policy_draft

    doc = copy.deepcopy(dep.nodes[0].access.state.policy.document)
    change(doc)
    draft = policy_draft(Policy.from_document(doc), at_us)
    by_node = draft_transaction(draft, dep.setups[0].key)
    assert all((r or "").startswith("record-not-by-a-writer") for r in hook(dep, by_node.to_wire()))
    tx = draft_transaction(draft, signing_key_of(dep.world.national_authority))
    net.submit(client, tx.to_wire())
    settle(net)
    assert results(net, client)[-1] == ["accepted", tx.id]
    assert all(dep.nodes[i].access.state.policy.document == doc for i in range(4))


def _institution_rule(doc: dict[str, Any]) -> dict[str, Any]:
    (rule,) = [r for r in doc["grant_rules"] if r["grantor"] == "institution"]
    return rule


def test_flipping_same_institution_and_private_in_the_published_policy_changes_decisions(
    tmp_path: Path,
) -> None:
    from medbench.access.clients import AdminClient

    dep, net = deploy(tmp_path, **FAST)
    users = dep.user_ids
    region = dep.doctors[0].info.region
    admin_id = dep.world.issue(
        "admin-0", "admin_staff", region, institution="hospital-0", at_us=GENESIS_US
    )
    reg = draft_transaction(certificate_draft(admin_id.chain, GENESIS_US + 1), dep.setups[0].key)
    net.submit(users[0], reg.to_wire())
    settle(net)
    admin = AdminClient(admin_id, None, dep.rng, privacy=dep.world.privacy)  # type: ignore[arg-type]
    patient, other_doctor = dep.patients[0].public_key, dep.doctors[1]  # at hospital-1

    def authorize(at_us: int, categories: list[str]) -> Transaction:
        body = {
            "grantee": other_doctor.public_key,
            "ops": ["read"],
            "categories": categories,
            "not_before_us": GENESIS_US,
            "not_after_us": GENESIS_US + HOUR_US,
        }
        return request_transaction(
            admin.request(Operation.GRANT, patient=patient, body=body, at_us=at_us)
        )

    first = authorize(GENESIS_US + 10, ["lab"])
    assert all((r or "").startswith("out-of-scope") for r in hook(dep, first.to_wire()))
    publish_policy(
        dep,
        net,
        users[1],
        lambda doc: _institution_rule(doc).update(same_institution=False),
        GENESIS_US + 20,
    )
    second = authorize(GENESIS_US + 30, ["lab"])
    assert hook(dep, second.to_wire()) == [None] * 4
    net.submit(users[2], second.to_wire())
    settle(net)
    assert results(net, users[2]) == [["accepted", second.id]]
    read = request_transaction(
        dep.doctor_client(1).request(
            Operation.READ,
            patient=patient,
            category="lab",
            body={"history": False},
            at_us=GENESIS_US + 40,
        )
    )
    assert hook(dep, read.to_wire()) == [None] * 4
    # "lab" becomes private: the institution rule no longer reaches it, at issue or at use
    publish_policy(
        dep,
        net,
        users[1],
        lambda doc: doc["categories"]["private"].append("lab"),
        GENESIS_US + 50,
    )
    assert all((r or "").startswith("no-grant") for r in hook(dep, read.to_wire()))
    third = authorize(GENESIS_US + 60, ["lab"])
    assert all((r or "").startswith("grant-not-permitted") for r in hook(dep, third.to_wire()))


# --- 5. hidden records: enforced by the validator, not by client-side filtering -------------------


def test_a_grantee_cannot_modify_or_delete_a_hidden_record(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, **FAST, max_batch_delay_us=5_000)
    users = dep.user_ids
    p, d = dep.patient_client(0), dep.doctor_client(0)
    body = {
        "grantee": d.public_key,
        "ops": ["read", "add", "modify", "delete"],
        "categories": ["*"],
        "not_before_us": GENESIS_US,
        "not_after_us": GENESIS_US + HOUR_US,
    }
    grant = request_transaction(
        p.request(Operation.GRANT, patient=p.public_key, body=body, at_us=GENESIS_US + 1)
    )
    add = request_transaction(
        d.request(
            Operation.ADD,
            patient=p.public_key,
            category="lab",
            body={"content": b"hb 13"},
            at_us=GENESIS_US + 2,
            countersign=True,
        )
    )
    net.submit(users[0], grant.to_wire())
    settle(net)
    net.submit(users[1], add.to_wire())
    settle(net)
    assert dep.nodes[0].replica.view == 0  # node 0 is the primary that batches below

    def change(op: Operation, at_us: int, **extra: Any) -> Transaction:
        req = d.request(
            op,
            patient=p.public_key,
            category="lab",
            body={"record": add.id, **extra},
            at_us=at_us,
            countersign=True,
        )
        return request_transaction(req)

    def hide(hidden: bool, at_us: int) -> Transaction:
        return request_transaction(
            p.request(
                Operation.HIDE,
                patient=p.public_key,
                category="lab",
                body={"record": add.id, "hidden": hidden},
                at_us=at_us,
            )
        )

    # the modify joins the hide's batch (links take 0.5-1.5 ms, the primary waits 5 ms): it is
    # admitted against the state before the hide, then refused at execution, in the total
    # order, by every replica alike
    modify = change(Operation.MODIFY, GENESIS_US + 4, content=b"hb 99", reason="typo")
    net.submit(users[2], hide(True, GENESIS_US + 3).to_wire())
    net.run(1_600)
    net.submit(users[3], modify.to_wire())
    settle(net)
    assert results(net, users[3]) == [["refused", "record-hidden"]]
    delete = change(Operation.DELETE, GENESIS_US + 5)
    assert all((r or "").startswith("record-hidden") for r in hook(dep, delete.to_wire()))
    for i in range(4):
        state = dep.nodes[i].access.state
        assert modify.id not in state.seen
        assert state.records.is_live(add.id) and add.id in state.records.hidden
        # a staff member reaching for a hidden record is blacklisted like any unauthorized act
        assert [r.content["reason"] for r in state.blacklist_records] == ["record-hidden"]
    # shown again by the patient, the grant reaches it again
    net.submit(users[1], hide(False, GENESIS_US + 6).to_wire())
    settle(net)
    again = change(Operation.MODIFY, GENESIS_US + 7, content=b"hb 13.1", reason="recheck")
    net.submit(users[2], again.to_wire())
    settle(net)
    assert results(net, users[2])[-1] == ["accepted", again.id]
    assert all(again.id in dep.nodes[i].access.state.records.versions for i in range(4))


def test_a_revoked_patient_cannot_backdate_under_a_pseudonym(tmp_path: Path) -> None:
    """A patient signs under a fresh pseudonym whose own certificate is valid; once her real
    certificate is revoked through PBFT, a pseudonymous request stamped before the revocation
    is refused like one under her own name (the floor walks the sealed principal's chain)."""
    dep, net = deploy(tmp_path, **FAST)
    users = dep.user_ids
    net.run(2_100_000)  # past the second the CA revokes in (X.509 times are whole seconds)
    patient, p = dep.patients[0], dep.patient_client(0)
    ca = dep.world.cas[patient.info.region]
    revoked_at = GENESIS_US + 2 * S
    ca.revoke(x509.load_der_x509_certificate(patient.chain[0]), revoked_at)
    draft = crl_draft(
        ca,
        dep.world.ca_chain(patient.info.region),
        at_us=revoked_at,
        next_update_us=revoked_at + HOUR_US,
    )
    crl = draft_transaction(draft, dep.setups[1].key)
    net.submit(users[1], crl.to_wire())
    settle(net)
    assert results(net, users[1]) == [["accepted", crl.id]]

    def own_add(at_us: int) -> Transaction:
        req = p.request(
            Operation.ADD,
            patient=p.public_key,
            category="identity",
            body={"content": b"x"},
            at_us=at_us,
        )
        assert req.principal_chain == patient.chain  # signed under a pseudonym
        return request_transaction(req)

    before = own_add(revoked_at - S // 2)
    assert patient.public_key not in before.public_keys  # the pseudonym signed, not her key
    verdicts = hook(dep, before.to_wire())
    assert all((r or "").startswith("stale-timestamp: predates") for r in verdicts), verdicts
    assert all(r is not None for r in hook(dep, own_add(revoked_at + 5).to_wire()))


# --- 6. key rotation: re-seal updates and a succession record, through PBFT -----------------------


def test_key_rotation_moves_records_and_grants_to_the_new_key_on_chain(tmp_path: Path) -> None:
    dep, net = deploy(tmp_path, users=6, **FAST)
    users, w = dep.user_ids, dep.world
    patient, p = dep.patients[0], dep.patient_client(0)
    blob = p.seal_private(b"name=Li Wei;id=330101199001011234")
    own = request_transaction(
        p.request(
            Operation.ADD,
            patient=p.public_key,
            category="identity",
            body={"content": blob},
            at_us=GENESIS_US + 1,
        )
    )
    net.submit(users[0], own.to_wire())
    net.submit(users[1], grant_wire(dep, 0, 0, GENESIS_US + 2))
    net.run(2_100_000)
    region = patient.info.region
    at = GENESIS_US + 2 * S
    proof = IdentityAttestation.sign(w.cas[region].key, "patient-0", "rotate", at)
    rot = rotate_subject(
        w.kmc,
        w.cas[region],
        w.ca_chain(region),
        "patient-0",
        proof,
        x509.load_der_x509_certificate(patient.chain[0]),
        {own.id: blob},
        at_us=at,
        not_after_us=at + 365 * 24 * HOUR_US,
        crl_next_update_us=at + HOUR_US,
        categories={own.id: "identity"},
    )
    assert rot.succession is not None and len(rot.updates) == 1
    new_key = SigningKey.generate(Scheme.ED25519, seed=rot.new.signing.private_bytes_raw())
    old, new = patient.public_key, rot.new.signing_public
    succession = draft_transaction(rot.succession, new_key)
    # hostile successions: signed by a node, or a certificate for somebody else
    by_node = draft_transaction(rot.succession, dep.setups[0].key)
    assert all((r or "").startswith("record-not-by-a-writer") for r in hook(dep, by_node.to_wire()))
    other = w.issue("someone-else", "patient", region, at_us=at)
    usurp = draft_transaction(succession_draft(old, other.chain, at + 1), signing_key_of(other))
    assert all((r or "").startswith("identity-mismatch") for r in hook(dep, usurp.to_wire()))
    steps = [
        draft_transaction(rot.crl, dep.setups[1].key),
        succession,
        *(
            draft_transaction(seal_draft(u, w.access_key.public, w.rng.randbytes), new_key)
            for u in rot.updates
        ),
    ]
    for k, tx in enumerate(steps):
        net.submit(users[2 + k], tx.to_wire())
        settle(net)
        assert results(net, users[2 + k]) == [["accepted", tx.id]], k
    # the doctor reads the patient under the new key, with the grant the old key gave; a read
    # naming the old key finds nobody there
    read = read_wire(dep, 0, 0, at + 10)
    fresh = dep.doctor_client(0).request(
        Operation.READ, patient=new, body={"history": False}, at_us=at + 11
    )
    read_new = request_transaction(fresh)
    net.submit(users[0], read_new.to_wire())
    settle(net)
    assert results(net, users[0])[-1] == ["accepted", read_new.id]
    assert all((r or "").startswith("unknown-subject") for r in hook(dep, read.to_wire()))
    stale = request_transaction(
        p.request(
            Operation.ADD, patient=old, category="visit", body={"content": b"x"}, at_us=at + 12
        )
    )
    assert all((r or "").startswith("cert-revoked") for r in hook(dep, stale.to_wire()))
    for i in range(4):
        node = dep.nodes[i]
        state = node.access.state
        assert state.successors == {old: new}
        assert old not in state.records.by_patient
        (current,) = state.records.current(new, include_hidden=True)
        assert current.supersedes == own.id and current.content == rot.resealed[own.id]
        assert open_sealed(EncryptionKey(rot.new.encryption), current.content) == (
            b"name=Li Wei;id=330101199001011234"
        )
        with pytest.raises(SealError):
            open_sealed(EncryptionKey(rot.old.encryption), current.content)
        assert [g.patient for g in state.grants.by_id.values()] == [new]
        assert node.access.chains[new][0] == rot.succession.content["chain"][0]
        assert node.verify(dep.signer_policy()).ok


# --- 7. every kind of refused attempt leaves its blacklist and audit records on chain -------------


def test_each_refused_attempt_is_blacklisted_and_audited_on_chain(tmp_path: Path) -> None:
    """No grant, expired grant, revoked grant, a write outside a read-only grant: for each, every
    node's chain lists the blacklist and the audit record of that very request."""
    dep, net = deploy(tmp_path, users=8, **FAST)
    u = dep.user_ids
    # doctor k works with patient k; patient 1's grant ends at genesis + 1 s, patient 2's is
    # revoked, patient 3's is read-only
    net.submit(u[0], grant_wire(dep, 1, 1, GENESIS_US + 1, na=GENESIS_US + S))
    net.submit(u[1], grant_wire(dep, 2, 2, GENESIS_US + 2))
    p3, d3 = dep.patient_client(3), dep.doctor_client(3)
    body = {
        "grantee": d3.public_key,
        "ops": ["read"],
        "categories": ["*"],
        "not_before_us": GENESIS_US,
        "not_after_us": GENESIS_US + HOUR_US,
    }
    net.submit(
        u[2],
        request_transaction(
            p3.request(Operation.GRANT, patient=p3.public_key, body=body, at_us=GENESIS_US + 3)
        ).to_wire(),
    )
    settle(net)
    gid = results(net, u[1])[0][1]
    p2 = dep.patient_client(2)
    net.submit(
        u[3],
        request_transaction(
            p2.request(
                Operation.REVOKE, patient=p2.public_key, body={"grant": gid}, at_us=GENESIS_US + 4
            )
        ).to_wire(),
    )
    net.run(S)  # past patient 1's window
    now = GENESIS_US + net.now
    write = request_transaction(
        d3.request(
            Operation.ADD,
            patient=p3.public_key,
            category="lab",
            body={"content": b"x"},
            at_us=now + 3,
            countersign=True,
        )
    )
    attempts = {
        "no-grant": read_wire(dep, 0, 0, now),
        "grant-expired": read_wire(dep, 1, 1, now + 1),
        "grant-revoked": read_wire(dep, 2, 2, now + 2),
        "no-grant (write)": write,
    }
    for client, tx in zip(u[4:], attempts.values(), strict=True):
        net.submit(client, tx.to_wire())
    settle(net)
    for i in range(4):
        node = dep.nodes[i]
        listed = {t for b in node.ledger.blocks() for t in b.tx_ids}
        on_chain = [codec.decode(node.ledger[t].content) for t in listed]
        for label, tx in attempts.items():
            reason = label.split(" ")[0]
            assert tx.id not in node.access.state.seen, label
            records = [c for c in on_chain if type(c) is dict and c.get("request") == tx.id]
            kinds = sorted(c["type"] for c in records)
            assert kinds == ["audit", "blacklist"], (i, label, kinds)
            for c in records:
                assert c.get("reason", c.get("outcome")) == reason, (label, c)
                assert c["evidence"] == tx.to_wire()  # provable by every replica
        assert node.verify(dep.signer_policy()).ok


# --- 8. sealed requests: clear ones refused, tampered envelopes refused, replicas agree ----------


def test_clear_requests_are_refused_and_sealed_ones_judged_alike_by_every_replica(
    tmp_path: Path,
) -> None:
    dep, net = deploy(tmp_path, **FAST)
    users = dep.user_ids
    p, d = dep.patients[0], dep.doctor_client(0)
    net.submit(users[0], grant_wire(dep, 0, 0, GENESIS_US + 1))
    settle(net)
    # the paper's clear form names the patient to every reader of the chain: refused
    clear = GranteeClient(dep.doctors[0], None, dep.rng)  # type: ignore[arg-type]
    leak = request_transaction(
        clear.request(Operation.READ, patient=p.public_key, body={"history": False},
                      at_us=GENESIS_US + 2)
    )  # fmt: skip
    assert p.public_key in leak.to_wire()
    assert all((r or "").startswith("unsealed-request") for r in hook(dep, leak.to_wire()))
    # the sealed read: every replica opens it and accepts it alike, with the same audit draft
    sealed = read_wire(dep, 0, 0, GENESIS_US + 3)
    assert p.public_key not in sealed.to_wire()
    verdicts = [dep.nodes[i].access.judge(sealed.to_wire()) for i in range(4)]
    assert all(isinstance(v.decision, Allowed) for v in verdicts)
    assert len({codec.encode(v.decision.audit.content) for v in verdicts}) == 1  # type: ignore[union-attr]
    # a bit flipped inside the envelope (re-signed by the doctor, so only the box is wrong)
    fields = codec.decode(sealed.content)
    fields["envelope"] = fields["envelope"][:-1] + bytes([fields["envelope"][-1] ^ 1])
    keys = [signing_key_of(dep.doctors[0])]
    bad = Transaction.create(Kind.QUERY, codec.encode(fields), GENESIS_US + 4, keys)
    assert all((r or "").startswith("sealed-envelope") for r in hook(dep, bad.to_wire()))
    # an untampered envelope moved under another signer does not open either (bound by aad)
    moved = {**codec.decode(sealed.content), "signer": dep.doctors[1].public_key}
    lifted = Transaction.create(
        Kind.QUERY, codec.encode(moved), GENESIS_US + 5, [signing_key_of(dep.doctors[1])]
    )
    assert all((r or "").startswith("sealed-envelope") for r in hook(dep, lifted.to_wire()))
    net.submit(users[1], sealed.to_wire())
    settle(net)
    assert results(net, users[1]) == [["accepted", sealed.id]]
    for i in range(4):
        (audit,) = [a for a in dep.nodes[i].access.state.audit if a.content["request"] == sealed.id]
        assert p.public_key not in codec.encode(audit.content)
        assert audit.content["signer"] == d.public_key


def test_a_consortium_may_still_take_clear_requests_when_told(tmp_path: Path) -> None:
    dep, _ = deploy(tmp_path, require_sealed=False, **FAST)
    p = dep.patients[0]
    clear = GranteeClient(p, None, dep.rng)  # type: ignore[arg-type]
    own = request_transaction(
        clear.request(Operation.READ, patient=p.public_key, body={"history": False},
                      at_us=GENESIS_US + 1)
    )  # fmt: skip
    assert hook(dep, own.to_wire()) == [None] * 4


def test_an_outside_auditor_verifies_the_sealed_chain_without_the_access_key(
    tmp_path: Path,
) -> None:
    from medbench.ledger import verify_transaction
    from medbench.ledger.audit import audit_publication, check_proof, prove, publish

    dep, net = deploy(tmp_path, **FAST)
    for op in care_session(dep, 0, 2, GENESIS_US + 1):
        net.submit(dep.user_ids[0], op)
    assert net.run_until_idle(5_000_000)
    net.run(300_000)
    node = dep.nodes[2]
    blocks = node.ledger.blocks()
    # headers + IDs only, as published: the chain verifies
    report = audit_publication(
        publish(node.ledger.genesis(), blocks), trusted_genesis_id=dep.genesis.id
    )
    assert report.ok
    bodies = [node.ledger[t] for b in blocks for t in b.tx_ids]
    patient = dep.patients[0]
    assert len(bodies) >= 5  # grant, two records, a read and its audit
    for tx in bodies:
        # every signature checks over the recomputed ID without opening any box ...
        assert verify_transaction(tx, Scheme.ED25519).ok
        # ... and no body shows the patient's keys
        assert patient.public_key not in tx.to_wire()
        assert patient.keys.encryption_public not in tx.to_wire()
        proof = prove(blocks, tx.id)
        assert proof is not None and check_proof([b.header for b in blocks], tx, proof)
