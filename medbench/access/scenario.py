"""A ready-made consortium: CA tree, KMC, published policy, chain state and enrolment.

Theory of operation
-------------------
docs/medical-chain.md §1.6 enrolment, end to end: the CA checks credentials, the KMC generates and
escrows the keys, the CA certifies the signing key (and the X25519 key in the identity extension),
and the certificate chain is registered on chain. :class:`Consortium` wires the pieces of
:mod:`medbench.pki` and :mod:`medbench.access` into one deterministic world (everything drawn from
one ``random.Random(seed)``) for tests, demos and the referral walk-through of §1.7:

    consortium root ("cn") > national CA ("cn") > provincial CAs ("cn/zj", "cn/gd")
                           > city CAs ("cn/zj/hz", "cn/zj/nb", "cn/gd/gz")

The national health authority enrolled by :meth:`Consortium.create` is the policy's genesis root
authority; every other authority must be delegated on chain.

The world also holds the **consortium access key** (issued by the KMC,
:meth:`~medbench.pki.kmc.KeyManagementCenter.access_key`; its validators open sealed requests with
it) and the **pseudonym CA** (``pseudonym-ca``, region ``cn``, under the national CA:
:class:`~medbench.pki.pseudonym.PseudonymIssuer`). Both are drawn from a generator of their own
(seeded from ``seed``), so adding them left every other key and certificate of the world as it was.
:attr:`Consortium.privacy` is what clients need to use them; ``create(private=False)`` gives a world
whose local chain's clients send clear requests (the paper's form).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cryptography import x509

from medbench.access.clients import Identity, LocalChain, Privacy
from medbench.access.rbac import Policy, default_policy_document
from medbench.access.state import ChainState
from medbench.access.validator import Validator
from medbench.crypto.sealing import EncryptionKey
from medbench.pki.ca import CertificateAuthority, crl_draft, der
from medbench.pki.kmc import KeyManagementCenter
from medbench.pki.pseudonym import PseudonymIssuer
from medbench.pki.subject import SubjectInfo, hash_identifier, region_depth

US = 1_000_000
DAY_US = 86_400 * US
YEAR_US = 365 * DAY_US
GENESIS_US = 1_700_000_000 * US
"""Consensus time of the genesis block in every scenario (2023-11-14T22:13:20Z)."""


@dataclass
class Consortium:
    """The CA tree, KMC, policy and chain of one deterministic scenario."""

    rng: random.Random
    root: CertificateAuthority
    cas: dict[str, CertificateAuthority]
    kmc: KeyManagementCenter
    chain: LocalChain
    national_authority: Identity
    access_key: EncryptionKey
    pseudonyms: PseudonymIssuer
    identities: dict[str, Identity] = field(default_factory=dict)

    @classmethod
    def create(
        cls, seed: int = 0, *, genesis_us: int = GENESIS_US, private: bool = True
    ) -> Consortium:
        """Build the CA tree, the KMC, the national authority, the policy and the chain
        (whose clients seal and use pseudonyms unless ``private`` is false)."""
        rng = random.Random(seed)
        nb, na = genesis_us - DAY_US, genesis_us + 20 * YEAR_US
        root = CertificateAuthority.create_root(rng, "cn", not_before_us=nb, not_after_us=na)
        national = root.create_subordinate("nhc-ca", "cn", not_before_us=nb, not_after_us=na)
        cas = {"cn": national}
        for prov in ("cn/zj", "cn/gd"):
            cas[prov] = national.create_subordinate(
                f"ca-{prov}", prov, not_before_us=nb, not_after_us=na
            )
        for city in ("cn/zj/hz", "cn/zj/nb", "cn/gd/gz"):
            parent = cas[city.rsplit("/", 1)[0]]
            cas[city] = parent.create_subordinate(
                f"ca-{city}", city, not_before_us=nb, not_after_us=na
            )
        kmc = KeyManagementCenter(rng, trusted_attesters={c.public_key for c in cas.values()})
        nha = _issue(kmc, cas, "nha", "health_admin_national", "cn", "", genesis_us, 20 * YEAR_US)
        pseudo_ca = national.create_subordinate(
            "pseudonym-ca",
            "cn",
            not_before_us=nb,
            not_after_us=na,
            rng=random.Random(f"medbench-pseudonym-ca-{seed}"),
        )
        doc = default_policy_document(
            [{"key": nha.public_key, "region": "cn"}], pseudonym_issuers=[pseudo_ca.public_key]
        )
        # the policy travels as published bytes, exactly as replicas load it from the chain
        policy = Policy.from_bytes(Policy.from_document(doc).to_bytes())
        access_key = kmc.access_key()
        state = ChainState(policy, (root.cert,))
        issuer = PseudonymIssuer(
            pseudo_ca,
            (der(pseudo_ca.cert), der(national.cert)),
            (root.cert,),
            access_key.public,
        )
        privacy = Privacy(access_key.public, issuer)
        chain = LocalChain(
            state, Validator(access_key=access_key), privacy=privacy if private else None
        )
        world = cls(rng, root, cas, kmc, chain, nha, access_key, issuer)
        world.identities["nha"] = nha
        world.register(nha, at_us=genesis_us)
        return world

    @property
    def state(self) -> ChainState:
        """The chain state."""
        return self.chain.state

    @property
    def privacy(self) -> Privacy:
        """What a client needs to seal its requests and sign under pseudonyms."""
        return Privacy(self.access_key.public, self.pseudonyms)

    def ca_chain(self, region: str) -> tuple[bytes, ...]:
        """The CA certificates from the CA of ``region`` up to (excluding) the root."""
        return _ca_chain(self.cas, region)

    def issue(
        self,
        identifier: str,
        role: str,
        region: str,
        *,
        institution: str = "",
        at_us: int,
        lifetime_us: int = 5 * YEAR_US,
    ) -> Identity:
        """KMC key generation + certificate from the CA of ``region`` (not yet registered)."""
        ident = _issue(
            self.kmc, self.cas, identifier, role, region, institution, at_us, lifetime_us
        )
        self.identities[identifier] = ident
        return ident

    def register(self, ident: Identity, *, at_us: int) -> None:
        """Commit the ``register`` transaction of an identity's certificate chain."""
        self.state.register(ident.chain, at_us)

    def enroll(
        self,
        identifier: str,
        role: str,
        region: str,
        *,
        institution: str = "",
        at_us: int,
        lifetime_us: int = 5 * YEAR_US,
    ) -> Identity:
        """Issue and register an identity in one step."""
        ident = self.issue(
            identifier,
            role,
            region,
            institution=institution,
            at_us=at_us,
            lifetime_us=lifetime_us,
        )
        self.register(ident, at_us=at_us)
        return ident

    def revoke(self, identifier: str, *, at_us: int) -> None:
        """Revoke an identity's certificate and commit the CRL publication."""
        ident = self.identities[identifier]
        ca = self.cas[ident.info.region]
        ca.revoke(x509.load_der_x509_certificate(ident.chain[0]), at_us)
        draft = crl_draft(
            ca, self.ca_chain(ident.info.region), at_us=at_us, next_update_us=at_us + 7 * DAY_US
        )
        self.state.publish_crl(draft)


def _ca_chain(cas: dict[str, CertificateAuthority], region: str) -> tuple[bytes, ...]:
    out = []
    while True:
        out.append(der(cas[region].cert))
        if region_depth(region) == 1:
            return tuple(out)
        region = region.rsplit("/", 1)[0]


def _issue(
    kmc: KeyManagementCenter,
    cas: dict[str, CertificateAuthority],
    identifier: str,
    role: str,
    region: str,
    institution: str,
    at_us: int,
    lifetime_us: int,
) -> Identity:
    keys = kmc.generate(identifier)
    info = SubjectInfo(
        role, institution, region, hash_identifier(identifier), keys.encryption_public
    )
    cert = cas[region].issue(
        info, keys.signing_public, not_before_us=at_us, not_after_us=at_us + lifetime_us
    )
    return Identity(keys, (der(cert), *_ca_chain(cas, region)), info)
