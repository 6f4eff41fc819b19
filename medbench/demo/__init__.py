"""Replayable demonstrations of the paper's scenarios (``medbench demo ...``, ``access-demo``).

* :mod:`.referral` — the referral walk-through (four simulated hospitals) and its attacks;
* :mod:`.access` — the identity and permission story, with the name-key dictionary attack.
"""
