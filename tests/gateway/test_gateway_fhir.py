"""FHIR clients written by others against the gateways of a 4-node consortium.

SMART on FHIR's ``fhirclient`` (create, read, a paged search, a transaction Bundle) and
``fhirpy`` (save, fetch_all); the chain's decisions come back as OperationOutcomes; hostile
input is refused with a bounded 4xx; proofs downloaded from the chain endpoints verify offline
with ``medbench verify --proof``; the scheduled retention moves and evicts images.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest

from medbench.cli import main as cli_main
from tests.gateway.conftest import Consortium

PATIENT = "patient-1"
DOCTOR = "doctor-1"


def _patient_json(name: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:medbench:user", "value": name}],
        "name": [{"family": "Tan", "given": ["Mei"]}],
        "gender": "female",
    }


def _encounter(pid: str, note: str = "") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        **({"reasonCode": [{"text": note}]} if note else {}),
    }


def _consent(pid: str, actor: str, ops: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": {
            "actor": [
                {
                    "role": {"coding": [{"code": "PRCP"}]},
                    "reference": {"reference": f"Practitioner/{actor}"},
                }
            ],
            "action": [{"coding": [{"system": "urn:medbench:operation", "code": o}]} for o in ops],
        },
    }


@pytest.fixture(scope="module")
def patient_id(consortium: Consortium) -> str:
    """patient-1's Patient, and her consent for doctor-1 (add, read, modify), on gateway 1."""
    base = consortium.urls[1]
    st, _hdr, doc = consortium.call("POST", f"{base}/Patient", PATIENT, _patient_json(PATIENT))
    assert st == 201, doc
    pid = doc["id"]
    st, _, doc = consortium.call(
        "POST", f"{base}/Consent", PATIENT, _consent(pid, DOCTOR, ["add", "read", "modify"])
    )
    assert st == 201, doc
    return str(pid)


def _fhirclient(consortium: Consortium, user: str, base: str) -> Any:
    from fhirclient import client

    smart = client.FHIRClient(settings={"app_id": "medbench-test", "api_base": base + "/"})
    smart.server.session.cert = consortium.user(user)
    smart.server.session.verify = consortium.ca
    smart.server.session.trust_env = False  # else REQUESTS_CA_BUNDLE overrides session.verify
    return smart


def test_fhirclient_create_read_paged_search_transaction(
    consortium: Consortium, patient_id: str
) -> None:
    from fhirclient.models.bundle import Bundle
    from fhirclient.models.encounter import Encounter

    smart = _fhirclient(consortium, DOCTOR, consortium.urls[1])
    created = []
    for k in range(3):
        enc = Encounter(_encounter(patient_id, f"visit {k}"))
        doc = enc.create(smart.server)
        assert doc["resourceType"] == "Encounter" and doc["meta"]["versionId"] == "1"
        created.append(doc["id"])
    got = Encounter.read(created[0], smart.server)
    assert got.subject.reference == f"Patient/{patient_id}" and got.status == "finished"
    search = Encounter.where(struct={"patient": patient_id, "_count": "2"})
    pages = list(search.perform_iter(smart.server))
    assert len(pages) >= 2 and pages[0].total >= 3
    assert all(link.url.startswith("https://") for link in pages[0].link)
    ids = {e.resource.id for p in pages for e in (p.entry or [])}
    assert set(created) <= ids
    tx = Bundle({
        "resourceType": "Bundle", "type": "transaction",
        "entry": [
            {"request": {"method": "POST", "url": "Encounter"}, "resource": _encounter(patient_id)},
            {"request": {"method": "POST", "url": "Observation"}, "resource": {
                "resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "subject": {"reference": f"Patient/{patient_id}"},
                "valueQuantity": {"value": 72, "unit": "/min"}}},
        ],
    })  # fmt: skip
    resp = smart.server.post_json("", tx.as_json()).json()
    assert resp["type"] == "transaction-response" and len(resp["entry"]) == 2
    assert all(e["response"]["status"].startswith("201") for e in resp["entry"])


def test_fhirpy_save_and_fetch_all(consortium: Consortium, patient_id: str) -> None:
    from fhirpy import SyncFHIRClient

    fc = SyncFHIRClient(
        consortium.urls[1],
        requests_config={"cert": consortium.user(DOCTOR), "verify": consortium.ca},
        extra_headers={"Content-Type": "application/fhir+json"},
    )
    obs = fc.resource(
        "Observation", status="final", subject={"reference": f"Patient/{patient_id}"},
        code={"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        valueQuantity={"value": 37.1, "unit": "Cel"},
    )  # fmt: skip
    obs.save()
    assert obs["id"]
    found = fc.resources("Observation").search(patient=patient_id).limit(1).fetch_all()
    assert obs["id"] in {r["id"] for r in found}


def test_chain_decides_and_answers_with_typed_reasons(
    consortium: Consortium, patient_id: str
) -> None:
    base = consortium.urls[1]
    st, hdr, doc = consortium.call("POST", f"{base}/Encounter", DOCTOR, _encounter(patient_id))
    assert st == 201 and hdr["etag"] == 'W/"1"' and hdr["location"].startswith(base)
    assert int(hdr["x-medbench-block-height"]) >= 1 and len(hdr["x-medbench-transaction"]) == 64
    rid = doc["id"]
    # If-Match: version 1 is live -> 200; version 1 again -> the chain refuses (no longer live)
    upd = _encounter(patient_id, "revised") | {"id": rid}
    st, hdr, _ = consortium.call(
        "PUT", f"{base}/Encounter/{rid}", DOCTOR, upd, {"If-Match": 'W/"1"'}
    )
    assert st == 200 and hdr["etag"] == 'W/"2"'
    st, _, doc = consortium.call(
        "PUT", f"{base}/Encounter/{rid}", DOCTOR, upd, {"If-Match": 'W/"1"'}
    )
    assert st == 412 and doc["issue"][0]["details"]["coding"][0]["code"] == "unknown-record"
    # past versions: only the patient (the policy), doctor refused by the chain
    st, _, doc = consortium.call("GET", f"{base}/Encounter/{rid}/_history", PATIENT)
    assert st == 200 and doc["total"] == 2
    st, _, doc = consortium.call("GET", f"{base}/Encounter/{rid}/_history", DOCTOR)
    assert st == 403 and doc["resourceType"] == "OperationOutcome"
    # another patient's data without a grant: the patient (not blacklistable) is refused
    st, _, doc = consortium.call("GET", f"{base}/Encounter/{rid}", "patient-0")
    assert st == 403 and doc["issue"][0]["details"]["coding"][0]["code"] == "no-grant"
    # the queries are on chain: the patient sees the AuditEvents about her
    st, _, doc = consortium.call("GET", f"{base}/AuditEvent?patient={patient_id}", PATIENT)
    assert st == 200 and doc["total"] >= 1
    assert {e["resource"]["resourceType"] for e in doc["entry"]} == {"AuditEvent"}
    st, _, doc = consortium.call("GET", f"{base}/AuditEvent?type=blacklist", "authority")
    assert st == 200
    # an invalid resource never reaches the chain
    bad = _encounter(patient_id) | {"status": 42, "nonsense": True}
    st, _, doc = consortium.call("POST", f"{base}/Encounter", DOCTOR, bad)
    assert st == 400 and doc["resourceType"] == "OperationOutcome"
    # staff keys are held by their own hospital
    st, _, _ = consortium.call(
        "GET", f"{consortium.urls[0]}/Encounter?patient={patient_id}", DOCTOR
    )
    assert st == 403
    st, _, doc = consortium.call("GET", f"{base}/metadata")
    assert st == 200 and doc["resourceType"] == "CapabilityStatement" and doc["fhirVersion"]


def _code(doc: dict[str, Any]) -> str:
    return str(doc["issue"][0]["details"]["coding"][0]["code"])


def test_chain_decides_who_sees_consents_and_audit_events(
    consortium: Consortium, patient_id: str
) -> None:
    """docs/medical-chain.md §1.6 "Who sees the permissions": every Consent or AuditEvent read
    is a visibility query the validators judge; a refusal comes back with their reason."""
    base = consortium.urls[1]
    st, _, doc = consortium.call("GET", f"{base}/Consent?patient={patient_id}", PATIENT)
    assert st == 200 and doc["total"] >= 1, doc
    cid = doc["entry"][0]["resource"]["id"]
    for user in (PATIENT, DOCTOR, "authority"):  # her own, naming him, everything
        st, _, got = consortium.call("GET", f"{base}/Consent/{cid}", user)
        assert st == 200 and got["id"] == cid, (user, got)
    st, _, doc = consortium.call("GET", f"{base}/Consent?patient={patient_id}", DOCTOR)
    assert st == 200 and cid in {e["resource"]["id"] for e in doc["entry"]}
    # another patient, named by none of patient-1's consents: the chain refuses
    st, _, doc = consortium.call("GET", f"{base}/Consent/{cid}", "patient-0")
    assert st == 403 and _code(doc) == "not-permitted", doc
    st, _, doc = consortium.call("GET", f"{base}/Consent?patient={patient_id}", "patient-0")
    assert st == 403 and _code(doc) == "not-permitted", doc
    # a doctor of another hospital, on his own gateway, likewise
    other = consortium.urls[0]
    st, _, doc = consortium.call("GET", f"{other}/Consent?patient={patient_id}", "doctor-0")
    assert st == 403 and _code(doc) == "not-permitted", doc
    # the visibility queries are audited: the patient sees them in her own trail
    st, _, doc = consortium.call("GET", f"{base}/AuditEvent?patient={patient_id}", PATIENT)
    assert st == 200
    cats = {
        e["what"]["display"] for r in doc["entry"] for e in r["resource"].get("entity", [])
        if "display" in e["what"]
    }  # fmt: skip
    assert "category consent:own" in cats, cats
    aid = doc["entry"][0]["resource"]["id"]
    st, _, got = consortium.call("GET", f"{base}/AuditEvent/{aid}", PATIENT)
    assert st == 200 and got["id"] == aid
    st, _, _ = consortium.call("GET", f"{base}/AuditEvent/{aid}", "authority")
    assert st == 200
    # the blacklist is an authority's view: a patient's search shows none of it
    st, _, doc = consortium.call("GET", f"{base}/AuditEvent?type=blacklist", PATIENT)
    assert st == 200 and doc["total"] == 0
    st, _, doc = consortium.call("GET", f"{base}/AuditEvent?type=blacklist", "authority")
    assert st == 200 and doc["total"] >= 1  # doctor-1's refused _history read


def test_hostile_input_gets_bounded_4xx(consortium: Consortium, patient_id: str) -> None:
    base = consortium.urls[1]
    t0 = time.monotonic()
    cases = [
        ("GET", f"{base}/Encounter?patient={patient_id}", None, None, {}, 401),  # no certificate
        ("POST", f"{base}/Encounter", PATIENT, None, {"Content-Type": "text/plain"}, 415),
        ("POST", f"{base}/Encounter", PATIENT, b"{" * 200_000, {}, 400),
        ("POST", f"{base}/Encounter", PATIENT, b"[" * 50 + b"]" * 50, {}, 400),
        ("POST", f"{base}/Encounter", PATIENT, b"x" * (2 << 20), {}, 413),
        ("GET", f"{base}/Encounter/..%2F..%2Fetc", PATIENT, None, {}, 404),
        ("GET", f"{base}/Encounter/" + "a" * 65, PATIENT, None, {}, 400),
        ("GET", f"{base}/Nonsense/abc", PATIENT, None, {}, 404),
        ("GET", f"{base}/Encounter?patient=1'%20OR%201=1--", PATIENT, None, {}, 400),
        ("GET", f"{base}/Encounter?_count=-1", PATIENT, None, {}, 400),
        ("GET", f"{base}/Encounter?patient=" + "x" * 5000, PATIENT, None, {}, 400),
        ("POST", f"{base}", PATIENT, b'{"resourceType":"Patient"}', {}, 400),
    ]
    for method, url, user, raw, headers, want in cases:
        st, _, doc = consortium.call(method, url, user, raw=raw, headers=headers)
        assert st == want, (url[:80], st, doc)
        assert isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome"
    assert time.monotonic() - t0 < 30


def test_proofs_verify_offline(consortium: Consortium, patient_id: str, tmp_path: Path) -> None:
    base = consortium.urls[1]
    root = base.removesuffix("/fhir")
    st, hdr, _ = consortium.call("POST", f"{base}/Encounter", DOCTOR, _encounter(patient_id))
    assert st == 201
    tx = hdr["x-medbench-transaction"]
    # the create answers once its block is stored; the block's signature may land a moment later
    # (docs/medical-chain.md §1.5), and a proof of a block not signed yet does not verify
    end = time.monotonic() + 10
    while True:
        st, _, proof = consortium.call("GET", f"{root}/chain/transactions/{tx}/proof")
        assert st == 200
        if proof["signature"] or time.monotonic() > end:
            break
        time.sleep(0.05)
    f = tmp_path / "inclusion.json"
    f.write_text(json.dumps(proof))
    assert cli_main(["verify", "--proof", str(f)]) == 0
    proof["path"] = proof["path"][::-1] if len(proof["path"]) > 1 else ["00" * 32]
    f.write_text(json.dumps(proof))
    assert cli_main(["verify", "--proof", str(f)]) == 1
    height = int(hdr["x-medbench-block-height"])
    while True:
        st, _, cons = consortium.call("GET", f"{root}/chain/consistency?first=1&second={height}")
        assert st == 200
        if all(h["signature"] for h in cons["headers"]) or time.monotonic() > end:
            break
        time.sleep(0.05)
    f.write_text(json.dumps(cons))
    assert cli_main(["verify", "--proof", str(f)]) == 0
    st, _, blk = consortium.call("GET", f"{root}/chain/blocks/{height}")
    assert st == 200 and tx in blk["tx_ids"] and blk["tree"][-1] == [blk["header"]["merkle_root"]]


def test_binary_tiers_and_retention(consortium: Consortium, patient_id: str) -> None:
    base = consortium.urls[1]
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    st, _hdr, doc = consortium.call(
        "POST", f"{base}/Binary", PATIENT, raw=image,
        headers={"Content-Type": "image/png", "X-Security-Context": f"Patient/{patient_id}"},
    )  # fmt: skip
    assert st == 201, doc
    digest = doc["id"]
    st, _, got = consortium.call("GET", f"{base}/Binary/{digest}", PATIENT)
    assert st == 200 and got == image
    # the patient's own upload is not the hospital's: near-line after 2 s, offline after 4 s
    end = time.monotonic() + 20
    text = ""
    while time.monotonic() < end:
        _, _, raw = consortium.call("GET", base.removesuffix("/fhir") + "/metrics")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if "medbench_gateway_retention_evictions_total 1.0" in text:
            break
        time.sleep(0.5)
    assert 'target="nearline"' in text and "medbench_gateway_retention_evictions_total 1.0" in text
    st, _, doc = consortium.call(
        "GET", f"{base}/Binary/{digest}", PATIENT, headers={"Accept": "application/fhir+json"}
    )
    assert st == 200 and base64.b64decode(doc["data"]) == image  # from the authority's archive
