"""Benchmarks (pytest-benchmark) and the regression gate of ``make bench`` / ``bench-check``."""
