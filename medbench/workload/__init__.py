"""Seeded synthetic workloads: hospitals, staff, patients and their signed medical transactions.

The top of the domain layers: it builds on the PKI, the ledger, the access rules and the records
layer, and nothing below imports it. :mod:`.generator` draws a consortium's population and a
stream of visits, grants, queries and records from a seed, and packs them into blocks.
"""

from medbench.workload.generator import WorkloadConfig, build_chain, generate

__all__ = ["WorkloadConfig", "build_chain", "generate"]
