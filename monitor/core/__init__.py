"""The core layer: what every other layer shares. The error hierarchy, strict decoding
(encoding, jsonread, protojson), escaping, times, asyncio helpers, name suggestions, the
Prometheus collectors, the token bucket, findings (with their severity), the per-log live
status, and image references (imageref).

The bottom: imports nothing of the monitor but the package's version.
"""
