"""tlog-monitor: a monitor for Sigstore's Rekor transparency logs."""

__version__ = "0.1.0.dev0"
