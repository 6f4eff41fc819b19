"""The deterministic discrete-event network simulator: a pure driver (it knows no protocol).

* :mod:`medbench.sim.engine` — :class:`Simulator`: virtual clock, event heap, delivery, CPU queues,
  faults, trace digest;
* :mod:`medbench.sim.topology` — latency/bandwidth/loss tables from :mod:`networkx` graphs and the
  ``complete``, ``city``, ``province`` and ``country`` presets;
* :mod:`medbench.sim.costs` — :class:`CostProfile` (CPU cost per operation) and :class:`OpCounter`
  for a node's ``take_costs()`` (:mod:`medbench.experiments.calibrate` measures a profile here);
* :mod:`medbench.sim.faults` — fault schedules (crash, recover, cut, heal, isolate, partition).

Protocols are joined to the simulator one level up, in :mod:`medbench.experiments`.
"""

from medbench.sim.costs import CostProfile, OpCounter
from medbench.sim.engine import SimulationError, Simulator
from medbench.sim.faults import Action, FaultEvent
from medbench.sim.topology import Topology

__all__ = [
    "Action",
    "CostProfile",
    "FaultEvent",
    "OpCounter",
    "SimulationError",
    "Simulator",
    "Topology",
]
