"""Clients for Rekor v1 (REST) and Rekor v2 (C2SP tlog-tiles).

Above config (a log's settings make its HTTP policy): may import everything below it.
"""
