"""What the daemon end to end is judged against (``bench.bench_daemon``, ``bench.report``)."""

V2_TARGET = 5_000.0  # entries a second from v2 tiles
V2_PARSE_SHARE = 0.5  # of the parse-only rate
V1_BUDGET = 16.0  # requests a second the public Rekor v1 allows
V1_TARGET = 150.0  # entries a second within that budget
MEMORY_AT = 10_000_000  # entries
MEMORY_LIMIT_MB = 400.0
MIN_FULL_V2 = 200_000  # the requirement: at least this many entries end to end
