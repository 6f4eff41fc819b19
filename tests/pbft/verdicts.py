"""Typed verdicts of the adversary: what counts as finding a bug, and what does not.

A schedule fails with a :class:`VerdictFailure` only when a checker proves a property broken:

* :class:`SafetyViolation` — an honest replica voted for two digests at one (view, sequence) (a
  PRE-PREPARE, one inside its NEW-VIEW, a PREPARE, a COMMIT), two checkpoints or two results
  for one request; honest replicas committed or executed different batches (digest or contents)
  at one sequence; an honest replica committed a sequence twice; a request its client saw
  refused was executed; an agreed time or a block time left its bounds;
* :class:`LivenessViolation` — after the faults healed, an honest client's request did not
  complete within the bound, or a valid request of the workload was refused;
* :class:`AgreementViolation` — honest replicas did not converge (state digest, chain, executed
  requests: each exactly once), a client accepted a result no honest replica computed, or a
  client adopted a view that no honest replica has reached;
* :class:`ResourceViolation` — an honest replica keeps unbounded state for one faulty sender
  (a finding, but not a safety, liveness or agreement verdict: the mutation gate does not count
  it as a kill).

Anything else that escapes a run is not a verdict: :class:`NodeCrashed` wraps an exception
raised inside a node's ``step`` or ``tick`` (an honest node must never raise on peer input, so
the schedules fail on it too), and a plain exception is broken code. The mutation gate
(``tests/mutation``) counts a mutant killed only on ``KILL_KINDS``.
"""

from __future__ import annotations


class VerdictFailure(Exception):
    """A checker proved a property broken; ``kind`` names the property."""

    kind = "verdict"


class SafetyViolation(VerdictFailure):
    """Honest replicas disagree on what was decided, or one contradicted its own vote."""

    kind = "safety"


class LivenessViolation(VerdictFailure):
    """Once the faults healed, the workload did not complete (or was wrongly refused)."""

    kind = "liveness"


class AgreementViolation(VerdictFailure):
    """Honest replicas or clients did not end in agreement (state, chain, results, views)."""

    kind = "agreement"


class ResourceViolation(VerdictFailure):
    """An honest replica's memory for one sender grew past its bound."""

    kind = "resource"


class NodeCrashed(Exception):
    """A node raised inside ``step`` or ``tick``: a robustness failure, not a verdict."""


KILL_KINDS = frozenset({"safety", "liveness", "agreement"})
"""The verdicts that kill a mutant."""


def raise_if(problems: list[str], cls: type[VerdictFailure], context: str = "") -> None:
    """Raise ``cls`` listing ``problems`` (the first ten) if there are any."""
    if problems:
        head = f"{context}: " if context else ""
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        raise cls(head + "; ".join(problems[:10]) + more)
