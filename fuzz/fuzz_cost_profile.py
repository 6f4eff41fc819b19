"""Cost-profile files (``medbench.sim.costs.CostProfile.load``, ``medbench.experiments.calibrate
.load``): a JSON file a user passes with ``--profile``.

Allowed: a profile, or :class:`~medbench.sim.costs.CostProfileError`. Checked on a profile: it
prices every operation (what the simulator does with it on every step) and survives a save and
load unchanged.
"""

from __future__ import annotations

from fuzz import samples
from fuzz.common import Harness, OneInput, expect
from medbench.experiments import calibrate
from medbench.sim.costs import OPS, CostProfile, CostProfileError


def setup() -> OneInput:
    directory = samples.scratch_dir()
    path, again = directory / "profile.json", directory / "again.json"

    def one_input(data: bytes) -> None:
        path.write_bytes(data)
        profile = (calibrate.load if len(data) % 2 else CostProfile.load)(path)
        for op in (*OPS, "extra", *profile.extra_ns):
            profile.op_ns(op, 3)
        profile.save(again)
        expect(CostProfile.load(again) == profile, "save then load changes the profile")

    return one_input


def seeds() -> list[bytes]:
    directory = samples.scratch_dir()
    out = []
    for i, profile in enumerate(
        (CostProfile.default(), CostProfile.zero(), CostProfile(extra_ns={"ml": 2.5}, host="h"))
    ):
        profile.save(directory / f"{i}.json")
        out.append((directory / f"{i}.json").read_bytes())
    out.append(b'{"sign_ns": 1, "extra_ns": {"a": 0}}')
    return out


HARNESS = Harness(
    name="cost_profile",
    summary="sim.costs.CostProfile.load / experiments.calibrate.load (cost-profile files)",
    allowed=(CostProfileError,),
    setup=setup,
    seeds=seeds,
    max_len=2048,
)
