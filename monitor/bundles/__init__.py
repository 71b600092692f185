"""Bundles: transparency-log evidence as users hold it (Sigstore bundles, Rekor v1 LogEntry
and LogInfo, v2 entries, cosign's rekor bundle) parsed into one shape (parse), verified
offline against the trust root (verify), and a promise completed with the log's proof
(online, ``verify-bundle --online``).

Above logclient, beside storage (neither imports the other): may import everything below it
(entries for the DSSE envelope, logclient for the online proof).
"""
