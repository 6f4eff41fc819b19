"""The real cluster driver, beside :mod:`medbench.sim`: the same sans-IO nodes on real processes.

Theory of operation
-------------------
:mod:`medbench.sim` drives the protocol nodes (:class:`medbench.node.Node`) in virtual time from a
cost model; this package drives the *same* objects — PBFT replicas and clients, Medical Chain
nodes, HotStuff and Raft replicas and clients — with real sockets, clocks and disks, one
operating-system process per hospital:

* :mod:`.config` — the consortium file every member shares and each node's local file (TOML);
* :mod:`.certs` — the consortium CA's transport certificates (ids as SAN URIs, strict X.509),
  PKCS#8 key files, TLS 1.3 contexts;
* :mod:`.framing` — length-prefixed frames (type, source id, payload) and the HELLO;
* :mod:`.transport` — links: TLS on memory BIOs, identities from certificates, bounded inboxes and
  out-queues, reconnection with backoff, seeded link faults, every refusal counted;
* :mod:`.driver` — rounds of steps, one storage group, one commit, then sends (group commit,
  persist before send), ticks from the monotonic clock;
* :mod:`.node` — a hospital node process (``medbench node run``): null service or Medical Chain,
  restart from its store, SIGTERM/SIGHUP;
* :mod:`.protocols` — the same process running chained HotStuff or Raft instead of PBFT (null
  service), and the audit of their stores;
* :mod:`.world` — the simulated users every process rebuilds, and the medical transactions the
  load generator signs and seals;
* :mod:`.loadgen` — closed- and open-loop clients in processes of their own (f+1 matching
  replies), HDR latency;
* :mod:`.telemetry` — the Prometheus endpoint and reading it back;
* :mod:`.cluster` — ``cluster init | up | status | down``: a consortium directory and its
  processes;
* :mod:`.bench` — load sweeps whose rows share the simulator's schema;
* :mod:`.scenarios` and :mod:`.audit` — faults on real processes and the safety audit of the
  stores.

Layering: this package may import the protocols (:mod:`medbench.consensus`,
:mod:`medbench.medchain`), storage, PKI and crypto, the workload and :mod:`medbench.metrics`;
never :mod:`medbench.sim`, the experiments, the study, the demos or the command line (which
imports it). Comparing the cluster with the simulator is the experiments' job.
"""
