"""``./scripts/bench``: each part of the server measured beside a raw baseline in the same
run (``python -m benchmarks [--quick]``)."""
