"""The monitoring pipeline: per log, poll the signed checkpoint, prove it extends the last
verified one, fetch the new entries, prove they are exactly the signed tree's leaves, then
parse, match and store them.

``monitor.pipeline.verify`` is the pure verification core (no storage, no scheduling): what is
known to be true about a log is a ``VerifiedTree``, and it only ever moves forward through the
functions there, which raise ``IntegrityFailure`` (with JSON-ready evidence) when the log lies.
"""
