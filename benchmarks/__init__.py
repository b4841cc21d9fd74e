"""Benchmark scripts (not part of the installed package): `python -m benchmarks.run` runs the suite."""
