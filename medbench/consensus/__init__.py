"""Consensus protocols: the PBFT replica of Medical Chain and the baselines it is compared with."""
