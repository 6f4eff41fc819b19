"""The outside auditor: verify a chain from published headers and IDs only (docs/medical-chain.md
§1.4).

Theory of operation
-------------------
Because blocks hold only transaction IDs, a consortium can publish its whole chain — genesis,
block headers, blocker signatures and ID lists — without publishing a single medical record. An
auditor who trusts the genesis (by its ID, obtained out of band, e.g. from the health authority)
then checks, with no transaction body at all:

* the chain's structure and signatures (:func:`medbench.ledger.chain.check_headers`: heights,
  links, expected blockers, blocker signatures, Merkle roots, timestamps, duplicate IDs);
* that a node's local copy agrees with the publication (:func:`compare`): blocks whose IDs differ
  are reported, and within a block ``medbench.merkle.diff`` pinpoints the positions whose
  transaction IDs differ;
* that a transaction a party shows them is on chain (:func:`prove` / :func:`check_proof`): its
  recomputed ID plus an RFC 9162 inclusion proof against the published header's Merkle root.

:func:`read_publication` reads hostile bytes within bounds and raises only
:class:`~medbench.ledger.errors.LedgerDecodeError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medbench import codec, merkle
from medbench.ledger.block import Block, BlockHeader, Genesis, verify_inclusion
from medbench.ledger.chain import ChainReport, Finding, FindingKind, Primary, verify_chain
from medbench.ledger.errors import LedgerDecodeError
from medbench.ledger.transaction import Transaction

PUBLICATION_TAG = "medbench-publication"
MAX_PUBLISHED_BLOCKS = 1 << 20
DEFAULT_PUBLICATION_LIMITS = codec.Limits(
    max_bytes=256 << 20, max_depth=4, max_container_len=MAX_PUBLISHED_BLOCKS
)


@dataclass(frozen=True, slots=True)
class Publication:
    """A published chain: the genesis and the blocks (headers, signatures, IDs)."""

    genesis: Genesis
    blocks: tuple[Block, ...]


def publish(genesis: Genesis, blocks: Sequence[Block]) -> bytes:
    """The canonical bytes of the chain as published for auditors (no transaction bodies)."""
    return codec.encode([PUBLICATION_TAG, genesis.to_fields(), [b.to_fields() for b in blocks]])


def read_publication(data: bytes, limits: codec.Limits = DEFAULT_PUBLICATION_LIMITS) -> Publication:
    """Decode published bytes from an untrusted source; raises only :class:`LedgerDecodeError`."""
    try:
        f = codec.decode(data, limits)
    except codec.DecodeError as exc:
        raise LedgerDecodeError(f"malformed publication: {exc}") from None
    if type(f) is not list or len(f) != 3 or f[0] != PUBLICATION_TAG or type(f[2]) is not list:
        raise LedgerDecodeError("a publication is [tag, genesis, [blocks]]")
    genesis = Genesis.from_wire(codec.encode(f[1])) if type(f[1]) is list else None
    if genesis is None:
        raise LedgerDecodeError("malformed genesis in publication")
    return Publication(genesis, tuple(Block.from_fields(b) for b in f[2]))


def audit_publication(
    data: bytes | Publication,
    *,
    trusted_genesis_id: bytes | None = None,
    primary: Primary = None,
) -> ChainReport:
    """Verify a publication without bodies; a genesis other than the trusted one is refused.

    Raises :class:`LedgerDecodeError` for malformed bytes and ``ValueError`` if the genesis is not
    the trusted one (nothing else in the publication can be trusted then).
    """
    pub = data if isinstance(data, Publication) else read_publication(data)
    if trusted_genesis_id is not None and pub.genesis.id != trusted_genesis_id:
        raise ValueError("the publication's genesis is not the trusted one")
    return verify_chain(pub.genesis, pub.blocks, None, primary=primary)


def compare(local: Sequence[Block], published: Sequence[Block]) -> list[Finding]:
    """Where a node's blocks differ from the published ones: differing block IDs, and the exact
    positions of differing transaction IDs (``merkle.diff``); extra or missing blocks too."""
    findings: list[Finding] = []
    for pos in range(max(len(local), len(published))):
        height = pos + 1
        if pos >= len(local) or pos >= len(published):
            side = "local" if pos >= len(published) else "published"
            findings.append(
                Finding(FindingKind.HEIGHT_MISMATCH, height, detail=f"only in the {side} chain")
            )
            continue
        a, b = local[pos], published[pos]
        if a.id == b.id and a.tx_ids == b.tx_ids:
            continue
        if a.id != b.id:
            findings.append(
                Finding(
                    FindingKind.ID_LIST_DIFFERS
                    if a.tx_ids != b.tx_ids
                    else FindingKind.LINK_BROKEN,
                    height,
                    detail=f"local block {a.id[:4].hex()} != published {b.id[:4].hex()}",
                )
            )
        for i in merkle.diff(a.tx_ids, b.tx_ids):
            tid = a.tx_ids[i] if i < len(a.tx_ids) else None
            findings.append(
                Finding(
                    FindingKind.ID_LIST_DIFFERS,
                    height,
                    i,
                    tid,
                    detail="transaction ID differs from the published block",
                )
            )
    return findings


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Evidence that a transaction ID is entry ``index`` of the block at ``height``."""

    height: int
    index: int
    count: int
    path: tuple[bytes, ...]

    def to_fields(self) -> list[Any]:
        """``[height, index, count, [path]]``."""
        return [self.height, self.index, self.count, list(self.path)]


def prove(blocks: Sequence[Block], tx_id: bytes) -> InclusionProof | None:
    """An inclusion proof of ``tx_id`` in ``blocks``, or ``None`` if it is listed nowhere."""
    for block in blocks:
        try:
            i = block.tx_ids.index(tx_id)
        except ValueError:
            continue
        return InclusionProof(block.height, i, len(block.tx_ids), tuple(block.inclusion_proof(i)))
    return None


def check_proof(
    headers: Sequence[BlockHeader], tx: Transaction | bytes, proof: InclusionProof
) -> bool:
    """True if ``tx`` (a body, whose ID is recomputed, or a bare ID) is on chain per ``proof``
    against the published ``headers`` (``headers[h-1]`` is height ``h``); never raises."""
    tid = tx.id if isinstance(tx, Transaction) else tx
    if not 1 <= proof.height <= len(headers):
        return False
    header = headers[proof.height - 1]
    return header.height == proof.height and verify_inclusion(
        header, tid, proof.index, proof.count, proof.path
    )
