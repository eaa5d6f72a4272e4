"""The benchmark: `python -m bench` (README, "Benchmark"). Not part of the tests."""
