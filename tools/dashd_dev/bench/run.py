"""`dashd bench run` (the default; what `make bench` calls)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

from dashd_dev.bench.collector import measure_collector
from dashd_dev.bench.loop import measure_fanout_loop
from dashd_dev.bench.procs import BenchError
from dashd_dev.bench.report import format_loop_cost, format_table, result_line, summarize, target_checks
from dashd_dev.bench.scenarios import Plan, full_plan, quick_plan
from dashd_dev.bench.servers import Environment, run_session

DEFAULT_SERVERS = "dashd,ws,floor"


def find_bench_dir(explicit: str | None) -> str:
    candidates = (
        [explicit]
        if explicit
        else [
            os.environ.get("DASHD_BENCH_DIR"),
            os.path.join(os.getcwd(), "bench"),
            os.path.join(os.path.dirname(__file__), "..", "..", "..", "bench"),
        ]
    )
    for candidate in candidates:
        if candidate and os.path.exists(os.path.join(candidate, "client.js")):
            return os.path.abspath(candidate)
    raise BenchError("cannot find bench/ (client.js, server.js); run from the repository root or pass --bench-dir")


def ensure_node_deps(bench_dir: str, node: str, say: Callable[[str], None]) -> None:
    if os.path.exists(os.path.join(bench_dir, "node_modules", "ws", "package.json")):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm is needed to install bench/'s dependencies (npm ci)")
    say("installing bench/ dependencies with npm ci")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=bench_dir, check=True, timeout=300)


def prepare_environment(args: argparse.Namespace, work_dir: str, say: Callable[[str], None]) -> Environment:
    from dashd.auth.devcert import write_self_signed
    from dashd.auth.tokens import TokenIssuer, load_or_create_secret

    node = shutil.which("node")
    if node is None:
        raise BenchError("node (20 or later) is needed for the load generator and the ws baseline")
    bench_dir = find_bench_dir(args.bench_dir)
    ensure_node_deps(bench_dir, node, say)
    state = os.path.join(work_dir, "state-template")
    os.makedirs(state)
    secret = load_or_create_secret(os.path.join(state, "secret.key"))
    token = TokenIssuer(secret).mint("bench", "viewer", 6 * 3600)[0]
    key, cert = write_self_signed(os.path.join(work_dir, "tls"), "localhost")
    return Environment(
        python=sys.executable,
        node=node,
        bench_dir=bench_dir,
        work_dir=work_dir,
        token=token,
        state_dir=state,
        tls_key=key,
        tls_cert=cert,
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    plan = quick_plan() if args.quick else full_plan()
    if args.repeats:
        plan = Plan(**{**plan.__dict__, "repeats": args.repeats})
    if args.sessions:
        wanted = set(args.sessions.split(","))
        plan = Plan(**{**plan.__dict__, "sessions": tuple(s for s in plan.sessions if s.name in wanted)})
    servers = args.servers.split(",")
    if args.servers == DEFAULT_SERVERS and (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")):
        servers.append("dashd-nginx")  # TLS terminated by nginx, for docs/benchmarks.md's comparison

    def say(text: str) -> None:
        print(text, flush=True)

    work_dir = tempfile.mkdtemp(prefix="dashd-bench-")
    rows: list[dict] = []
    collector: dict | None = None
    loop_cost: dict | None = None
    interrupted: list[int] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        env = prepare_environment(args, work_dir, say)
        say(
            f"dashd bench ({'quick' if args.quick else 'full'}): {len(plan.sessions)} sessions x "
            f"{len(servers)} servers x {plan.repeats} repeats; logs in {work_dir}"
        )
        for repeat in range(plan.repeats):
            for session in plan.sessions:
                # Alternate which server goes first, so slow drift in the
                # machine's other load does not favour one of them.
                order = servers if repeat % 2 == 0 else list(reversed(servers))
                for kind in order:
                    if kind == "floor" and session.deflate:
                        continue  # the floor negotiates no extension: nothing to compare
                    if kind == "dashd-nginx" and not session.tls:
                        continue  # nginx is only there to terminate TLS
                    say(f"  [{time.monotonic() - started:5.0f}s] {session.name} on {kind} (repeat {repeat + 1})")
                    run_id = f"r{repeat}-{session.name}-{kind}"
                    try:
                        for row in run_session(kind, session, env, plan, run_id, say):
                            row["repeat"] = repeat
                            rows.append(row)
                    except BenchError as error:
                        say(f"    FAILED: {error}")
        if plan.collector_seconds > 0 and not args.no_collector:
            say(f"  [{time.monotonic() - started:5.0f}s] collector alone at 1 Hz for {plan.collector_seconds:g}s")
            collector = measure_collector(env.python, plan.collector_seconds)
        if not args.no_collector:
            say(f"  [{time.monotonic() - started:5.0f}s] the flat broadcast loop against the floor, in one process")
            loop_cost = measure_fanout_loop(env.python, 1000, 100 if args.quick else 400)
    except KeyboardInterrupt:
        say("interrupted")
        return 130
    except BenchError as error:
        say(f"bench failed: {error}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    summary = summarize(rows)
    print()
    print(format_table(summary))
    if collector is not None:
        print(
            f"\ncollector alone (psutil at 1 Hz, {collector['seconds']:g}s): {collector['cpu_pct']:.2f}% of one core, "
            f"{collector['mean_sample_ms']:.2f} ms per sample (max {collector['max_sample_ms']:.2f} ms)"
        )
    if loop_cost is not None:
        print(format_loop_cost(loop_cost))
    line, values = result_line(summary)
    print("\ntargets:")
    for check in target_checks(summary, values):
        print(check)
    print(
        f"\nmachine: {os.cpu_count()} cores; total {time.monotonic() - started:.0f}s; "
        "'other%' is CPU used by processes outside the bench during each window"
    )
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "rows": rows,
                    "summary": summary,
                    "collector": collector,
                    "loop": loop_cost,
                    "result": values,
                    "quick": args.quick,
                },
                f,
                indent=1,
                default=str,
            )
    print(line, flush=True)
    return 0
