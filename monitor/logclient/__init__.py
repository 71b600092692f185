"""Clients for Rekor v1 (REST) and Rekor v2 (C2SP tlog-tiles)."""
