"""Experiments: every protocol joined to the drivers, and the runs and sweeps built on them.

The layer above the drivers (:mod:`medbench.sim`): a protocol knows nothing of the simulator, so
the code that joins the two lives here, one adapter per protocol.

* :mod:`.runner` — a run is (parameters, seed) -> one flat row; a sweep is grid x seeds (its API
  is re-exported here: :func:`run`, :func:`run_grid`, :class:`Deployment`, ...);
* :mod:`.pbft` — the ``pbft`` protocol factory (replicas, clients, Byzantine behaviours, verdicts);
* :mod:`.baselines` — ``pow``, ``poa``, ``dpos``, ``poi`` and ``central``;
* :mod:`.toy` — ``toy-quorum``, a small reference protocol for tests and demos;
* :mod:`.calibrate` — measures this host's cost profile for the simulator.
"""

from medbench.experiments.runner import (
    DEFAULTS,
    NONDETERMINISTIC_COLUMNS,
    Deployment,
    ExperimentError,
    ProtocolFactory,
    Submission,
    build_simulator,
    expand_grid,
    get_protocol,
    metadata,
    node_rows,
    protocols,
    register_protocol,
    run,
    run_detailed,
    run_grid,
    run_grid_detailed,
    run_id,
    seed_list,
    write_results,
)

__all__ = [
    "DEFAULTS",
    "NONDETERMINISTIC_COLUMNS",
    "Deployment",
    "ExperimentError",
    "ProtocolFactory",
    "Submission",
    "build_simulator",
    "expand_grid",
    "get_protocol",
    "metadata",
    "node_rows",
    "protocols",
    "register_protocol",
    "run",
    "run_detailed",
    "run_grid",
    "run_grid_detailed",
    "run_id",
    "seed_list",
    "write_results",
]
