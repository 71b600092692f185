"""Tools for working on tlog-monitor, run from a checkout (``python -m tools.NAME``): they write
files the repository keeps and are not part of the installed package."""
