"""`dashd bench` / `python -m dashd_dev.bench`: dashd's load tool and its Node
`ws` baseline, run one after the other under the same load (docs/benchmarks.md).

Its commands, one module each (`python -m dashd_dev.bench --help`):

- `run` (the default; what `make bench` calls): for each scenario starts a
  server (dashd's real service tree via `serve` below, or the Node `ws`
  baseline in bench/server.js), opens N authenticated clients with the Node
  load generator (bench/client.js, several processes: a Python client cannot
  read 100k messages/s on two cores), measures, and prints a table and one
  `RESULT ...` line.
- `serve`: dashd as the bench runs it: `dashd.tap.build_daemon` (listeners,
  hub, store, rules, telemetry: nothing mocked) whose collector reads a
  synthetic ~300-byte sample instead of psutil, at a rate set on stdin.
- `collector`: the CPU the real collectors cost: the psutil host collector
  at 1 Hz and every issue 19 collector at its default cadence.
- `loop`: the flat broadcast loop's CPU per delivery against the floor's.
- `store`: the chunk store on SQLite and MariaDB (docs/storage.md).

`run` is built from scenarios.py (the plans), servers.py (a server under
test, the Node load generator, one measured window), report.py (the
numbers, the table, the RESULT line) and procs.py (child processes, /proc).

Every target is 127.0.0.1; every wait is bounded; every child process is
ended, by its pid, when the run ends or fails.
"""
