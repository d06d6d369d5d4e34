"""The bench's command line, on `python -m dashd_dev.bench` and on `dashd bench`."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import dashd_dev.bench as bench_package
from dashd_dev.bench.collector import collector_cost
from dashd_dev.bench.loop import fanout_loop_cost
from dashd_dev.bench.run import DEFAULT_SERVERS, run
from dashd_dev.bench.samples import IDLE_HZ
from dashd_dev.bench.serve import serve


def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The bench's options, on `python -m dashd_dev.bench` and on `dashd bench`."""
    commands = parser.add_subparsers(dest="bench_command")

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--quick", action="store_true", help="a short run (under 3 minutes)")
        p.add_argument("--repeats", type=int, default=None, help="repeat every scenario this many times")
        p.add_argument(
            "--sessions", default=None, help="comma-separated session names (1k,5k,10k-idle,1k-deflate,1k-tls)"
        )
        p.add_argument(
            "--servers",
            default=DEFAULT_SERVERS,
            help="dashd, ws, floor (bench/floor.py), dashd-py (flat loop in Python), dashd-nginx (TLS "
            "sessions: nginx terminates TLS), dashd-stock, dashd-2w (default dashd,ws,floor, plus "
            "dashd-nginx when nginx is installed)",
        )
        p.add_argument("--bench-dir", default=None, help="the directory holding client.js and server.js")
        p.add_argument("--json", default=None, help="also write every measurement to this file")
        p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
        p.add_argument("--no-collector", action="store_true", help="skip the collector cost measurement")

    run_options(parser)
    run_options(commands.add_parser("run", help="the benchmark (default)"))

    serve_parser = commands.add_parser("serve", help="dashd with a synthetic publisher (driven by `run`)")
    serve_parser.add_argument("--state-dir", required=True)
    serve_parser.add_argument("--port", type=int, default=0)
    serve_parser.add_argument("--rate", type=float, default=IDLE_HZ)
    serve_parser.add_argument("--tls-key", default=None)
    serve_parser.add_argument("--tls-cert", default=None)
    serve_parser.add_argument("--stock", action="store_true", help="Autobahn's own write path (no dashd.wire.fastpath)")
    serve_parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="listen with SO_REUSEPORT (the multi-process experiment: start several)",
    )

    loop_parser = commands.add_parser("loop", help="the flat broadcast loop's CPU per delivery against the floor's")
    loop_parser.add_argument("--clients", type=int, default=1000)
    loop_parser.add_argument("--rounds", type=int, default=200)

    collector_parser = commands.add_parser("collector", help="CPU of the collectors (all, at default cadences)")
    collector_parser.add_argument("--seconds", type=float, default=60.0)
    collector_parser.add_argument("--interval", type=float, default=1.0)
    collector_parser.add_argument(
        "--spawn", type=int, default=0, help="start this many idle processes first (to measure ~300 processes)"
    )
    collector_parser.add_argument(
        "--only-host", action="store_true", help="only the seed's psutil host collector (what `run` measures)"
    )
    from dashd_dev.bench import store as bench_store

    bench_store.configure(commands)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    if args.bench_command == "serve":
        return serve(args)
    if args.bench_command == "collector":
        return collector_cost(args)
    if args.bench_command == "store":
        from dashd_dev.bench import store as bench_store

        return bench_store.main(args)
    if args.bench_command == "loop":
        return fanout_loop_cost(args)
    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    description = (bench_package.__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m dashd_dev.bench", description=description)
    return dispatch(configure_parser(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
