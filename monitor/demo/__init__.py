"""The offline demo (``tlog-monitor demo``, ``make demo``): the simulator with a growing log,
the monitor on ``config/demo.yaml`` and a webhook receiver that checks and prints every alert,
in one process, on loopback only.

A tool: may import everything below it (the daemon, the simulator).
"""
