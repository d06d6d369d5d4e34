"""dashd's development tools: the load benchmark (`dashd bench`) and the
WebSocket conformance echo server (`dashd conformance-echo`).

Test tools, never part of the daemon: the wheel's `dashd` package does not
contain them. A development install (`make test-deps`, which runs
`pip install ./tools`) adds this package, and `dashd bench` and
`dashd conformance-echo` dispatch to it when it is importable.
"""
