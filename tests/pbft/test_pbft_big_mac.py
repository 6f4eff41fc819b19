"""The "big MAC" attack (Clement et al., NSDI 2009): one faulty client, MAC authenticators.

Defect 7 of issue 13: with MAC authenticators on client requests, a faulty client whose
authenticator is valid at the primary and not at some backups gets its request proposed and the
whole pre-prepare refused by those backups, view after view: the group changes view for ever.
``macs`` now means what Aardvark does — clients sign their requests, replicas keep MACs among
themselves — so every replica reaches the same verdict on a request. Plain MACs on requests
remain selectable, and the attack is shown to work on them (the test is not vacuous).
"""

from __future__ import annotations

from pbft_harness import Network, safety_violations

from medbench.consensus.auth import MacKeyring, SignedRequestMacKeyring
from medbench.consensus.pbft.messages import Request

FAULTY, HONEST = 4, 5


def _spoiled_requests(net: Network) -> list[Request]:
    """Requests of the faulty client, request ``k`` authentic at replicas ``k`` and ``k + 1``
    only: whoever is primary finds one it can propose, and two backups refuse it."""
    keyring = net.keyrings[FAULTY]
    out = []
    for k in range(4):
        req = Request(FAULTY, k + 1, b"spoiled%d" % k)
        auth = keyring.sign(req.body())
        if isinstance(auth, tuple):  # plain MACs: one entry per replica, two of them spoiled
            valid = {k, (k + 1) % 4}
            auth = tuple(e if i in valid else bytes(len(e)) for i, e in enumerate(auth))
        else:  # a signature: the client cannot make it valid for some replicas only
            auth = bytes(len(auth))
        out.append(Request(FAULTY, k + 1, req.operation, auth))
    return out


def _attacked(client_signatures: bool) -> Network:
    net = Network(
        n=4,
        clients=2,
        seed=31,
        scheme="macs",
        client_signatures=client_signatures,
        view_change_timeout_us=50_000,
        client_timeout_us=50_000,
    )
    for req in _spoiled_requests(net):
        for r in range(4):
            net.deliver_now(FAULTY, r, req)
    for k in range(5):
        net.submit(HONEST, b"honest%d" % k)
    net.run(2_000_000)
    return net


def test_signed_requests_are_the_default_with_macs() -> None:
    net = Network(n=4, clients=1, scheme="macs")
    assert all(isinstance(k, SignedRequestMacKeyring) for k in net.keyrings.values())
    plain = Network(n=4, clients=1, scheme="macs", client_signatures=False)
    assert all(type(k) is MacKeyring for k in plain.keyrings.values())


def test_one_faulty_client_cannot_stall_the_group() -> None:
    net = _attacked(client_signatures=True)
    assert sorted(c.timestamp for c in net.completed if c.client == HONEST) == [1, 2, 3, 4, 5]
    assert all(r.view == 0 for r in net.replicas())  # no view change at all
    assert all(r.rejections["request not authentic"] == 4 for r in net.replicas())
    assert all(r.last_executed >= 1 for r in net.replicas())
    assert safety_violations(net, range(4)) == []


def test_with_plain_macs_the_attack_works() -> None:
    """Not vacuous: with MAC authenticators on requests the same client makes the group change
    view again and again, and the honest client's requests wait."""
    net = _attacked(client_signatures=False)
    views = [r.view for r in net.replicas()]
    assert min(views) >= 4, views  # every primary in turn proposes a request two backups refuse
    assert safety_violations(net, range(4)) == []
