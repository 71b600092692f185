"""Bundles: transparency-log evidence as users hold it (Sigstore bundles, Rekor v1 LogEntry
and LogInfo, v2 entries, cosign's rekor bundle) parsed into one shape (parse), verified
offline against the trust root (verify), and a promise completed with the log's proof
(online, ``verify-bundle --online``).

Imports core, tlog, trust, entries (the DSSE envelope) and logclient (the online proof).
"""
