"""A Rekor-compatible log simulator that can lie, for tests, benchmarks and the demo.

Beside the daemon (neither imports the other): may import everything below it; it uses
only core and tlog.
"""
