"""Tests of medbench.pki and medbench.access."""
