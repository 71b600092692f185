"""Container registries (the OCI distribution spec): image references, tags, manifests and
indexes, and what is attached to a digest (referrers, cosign's ``.sig`` and ``.att``), read
with the log clients' HTTP policy and every digest checked."""
