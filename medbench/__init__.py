"""medbench: a research and benchmarking kit for consortium medical blockchains."""

__version__ = "0.1.0"
