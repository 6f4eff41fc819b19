"""KMC key files (``medbench.pki.kmc.KeyBundle.load``): the two password-encrypted PKCS#8 keys
the KMC hands an applicant, as she stores them on disk.

Allowed: a key bundle, or :class:`~medbench.pki.kmc.KmcError`. Checked on a bundle: it exports
and loads again to the same keys.
"""

from __future__ import annotations

import random

from fuzz.common import Harness, OneInput, expect
from fuzz.fuzz_pkcs8 import PASSWORD
from medbench.pki.kmc import KeyBundle, KmcError


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        bundle = KeyBundle.load(data, PASSWORD)
        again = KeyBundle.load(bundle.export(PASSWORD), PASSWORD)
        expect(again.raw() == bundle.raw(), "export then load changes the keys")

    return one_input


def seeds() -> list[bytes]:
    return [KeyBundle.generate(random.Random(i)).export(PASSWORD) for i in range(2)]


HARNESS = Harness(
    name="kmc_keyfile",
    summary="pki.kmc.KeyBundle.load (KMC key files)",
    allowed=(KmcError,),
    setup=setup,
    seeds=seeds,
    max_len=2048,
)
