"""The transparency-log layer: RFC 6962 Merkle trees (merkle), C2SP signed notes (note) and
checkpoints (checkpoint), tlog-tiles (tiles), and what the log proved (proofs: the verified
tree, checkpoint advance, batch verification, seeding, tile proofs).

Above core, and imports only core: it knows nothing of Sigstore's trust root, entries or
storage.
"""
