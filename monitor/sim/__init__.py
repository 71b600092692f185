"""A Rekor-compatible log simulator that can lie, for tests, benchmarks and the demo."""
