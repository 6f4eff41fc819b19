"""The HotStuff adversary's schedules with typed verdicts, for the mutation gate.

``test_hotstuff_random.run_schedule`` states its checks as assertions (safety after the fault
phase and at the end, liveness once healed, convergence and exactly-once execution);
:func:`check_seed` turns a failed check into the verdict it proves (``tests/pbft/verdicts.py``),
so that ``tests/mutation`` can tell a kill (a safety, liveness or agreement verdict) from broken
code. Only an assertion of the test code itself is a verdict: one raised inside the ``medbench``
package (a replica's own ``assert``) is broken code and propagates unchanged, as does any other
exception. The Twins scenarios (``hotstuff_twins.py``) raise typed verdicts themselves.
"""

from __future__ import annotations

import traceback
from pathlib import Path

import hotstuff_twins  # noqa: F401  (puts tests/pbft, home of the verdicts, on the path)
from test_hotstuff_random import run_schedule
from verdicts import AgreementViolation, LivenessViolation, SafetyViolation, VerdictFailure

TESTS = Path(__file__).resolve().parent.parent

SAFETY_WORDS = ("voted for", "committed different", "differ in state", "with gaps", "re-committed")


def classify(message: str) -> type[VerdictFailure]:
    """The verdict a failed assertion of ``run_schedule`` or the harness proves."""
    if any(w in message for w in SAFETY_WORDS):
        return SafetyViolation
    if "completed" in message:
        return LivenessViolation
    return AgreementViolation  # heights, state digests, executed requests


def check_seed(
    seed: int, recovery: bool = False, scheme: str = "modeled", forking: bool = False
) -> None:
    """Run one random fault schedule; raise a typed verdict if one of its checks fails."""
    try:
        run_schedule(seed, scheme, recovery=recovery, forking=forking)
    except AssertionError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        if not frames or not Path(frames[-1].filename).resolve().is_relative_to(TESTS):
            raise  # an assertion of the package under test: broken code, not a verdict
        cls = classify(str(exc))
        raise cls(f"hotstuff seed {seed}: {exc}") from exc
