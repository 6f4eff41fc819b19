"""``medbench.codec.decode``: the canonical MessagePack reader under every other decoder.

Allowed: a value, or :class:`~medbench.codec.DecodeError`. Checked on a value: it re-encodes to
exactly the input (the module's canonical-form promise), and decoding under tight limits gives
either the same value or ``DecodeError``.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench import codec

_TIGHT = codec.Limits(max_bytes=256, max_depth=2, max_container_len=4)


def setup() -> OneInput:
    def one_input(data: bytes) -> None:
        value = codec.decode(data)
        expect(codec.encode(value) == data, "decode then encode is not the identity")
        try:
            again = codec.decode(data, _TIGHT)
        except codec.DecodeError:
            return
        expect(again == value, "tight limits changed the decoded value")

    return one_input


def seeds() -> list[bytes]:
    values = [
        None,
        True,
        0,
        -1,
        (1 << 64) - 1,
        -(1 << 63),
        b"",
        b"\x00" * 300,
        "",
        "ünïcode",
        [],
        [1, [2, [3, [4]]]],
        {"a": 1, "b": [b"x", None], "c": {"d": "e"}},
        list(range(20)),
    ]
    out = [codec.encode(v) for v in values]
    out += [m.encode() for m in samples.pbft_messages()[:6]]
    out += [t.to_wire() for t in samples.transactions()[:3]]
    return out


HARNESS = Harness(
    name="codec",
    summary="medbench.codec.decode (canonical MessagePack)",
    allowed=(codec.DecodeError,),
    setup=setup,
    seeds=seeds,
)
