"""Consensus protocols of medbench; each is a sans-IO node (see :mod:`medbench.node`)."""
