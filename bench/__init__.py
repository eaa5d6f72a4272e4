"""The benchmark: `python -m bench` (docs/benchmark.md). Not part of the tests."""
