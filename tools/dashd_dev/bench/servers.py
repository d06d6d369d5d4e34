"""One session: a server under test, the Node load generator, and the
windows measured between them."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from dashd_dev.bench.procs import (
    BenchError,
    Child,
    child_pids,
    free_port,
    machine_busy_seconds,
    process_cpu_seconds,
    process_cpu_split,
    process_rss_kb,
    stop_process,
)
from dashd_dev.bench.report import KB, LatencyHistogram, format_progress, median
from dashd_dev.bench.samples import BENCH_HOST, BENCH_METRICS, IDLE_HZ
from dashd_dev.bench.scenarios import Plan, Session

RAMP_MIN_DELIVERED = 0.95
RAMP_MAX_P99_MS = 100.0


@dataclass
class Environment:
    python: str
    node: str
    bench_dir: str
    work_dir: str
    token: str
    state_dir: str
    tls_key: str
    tls_cert: str


def clients_per_process(clients: int) -> list[int]:
    processes = max(2, min(4, math.ceil(clients / 2500)))
    base, extra = divmod(clients, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


class ServerUnderTest:
    """dashd (`serve`), the Node baseline, or -- the multi-process
    experiment -- `dashd-2w`: two dashd processes sharing one port
    (SO_REUSEPORT), each with its own publisher, started for one session."""

    def __init__(self, kind: str, env: Environment, session: Session, run_id: str) -> None:
        self.kind = kind
        workers = 2 if kind == "dashd-2w" else 1
        port = free_port() if workers > 1 else 0
        self.children: list[Child] = []
        for worker in range(workers):
            child_env: dict[str, str] | None = None
            log = os.path.join(env.work_dir, f"{run_id}-{kind}-server{worker}.log")
            if kind in ("ws", "floor"):
                # ws: the `ws` library (bench/server.js); floor: the kernel's limit,
                # a handshake then one send() per socket (bench/floor.py). Same flags.
                program, script = (env.node, "server.js") if kind == "ws" else (env.python, "floor.py")
                argv = [
                    program,
                    os.path.join(env.bench_dir, script),
                    "--port",
                    "0",
                    "--rate",
                    str(IDLE_HZ),
                    "--metrics",
                    json.dumps(BENCH_METRICS),
                    "--host-name",
                    BENCH_HOST,
                ]
                if kind == "ws" and session.deflate:
                    argv.append("--deflate")
            else:
                state = os.path.join(env.work_dir, f"{run_id}-state{worker}")
                shutil.copytree(env.state_dir, state)
                argv = [
                    env.python,
                    "-m",
                    "dashd_dev.bench",
                    "serve",
                    "--state-dir",
                    state,
                    "--port",
                    str(port),
                    "--rate",
                    str(IDLE_HZ),
                ]
                if kind == "dashd-stock":
                    argv.append("--stock")
                if kind == "dashd-py":
                    child_env = dict(os.environ, DASHD_FANOUT_LOOP="python")  # the flat loop without the C extension
                if workers > 1:
                    argv.append("--reuse-port")
            if session.tls and kind != "dashd-nginx":
                argv += ["--tls-key", env.tls_key, "--tls-cert", env.tls_cert]
            self.children.append(
                Child(
                    f"{kind} server {worker}",
                    argv,
                    cwd=env.bench_dir if kind in ("ws", "floor") else None,
                    log_path=log,
                    env=child_env,
                )
            )
        ready = [child.wait_event("ready", 60) for child in self.children]
        self.port = int(ready[0]["port"])
        self.nginx: subprocess.Popen | None = None
        if kind == "dashd-nginx":
            # TLS terminated by nginx in front of dashd's plain listener: the
            # CPU counted is dashd's plus nginx's (master and worker).
            self.port = free_port()
            self.nginx = start_nginx(env, run_id, self.port, int(ready[0]["port"]), session.tls)
        self.url = f"{'wss' if session.tls else 'ws'}://127.0.0.1:{self.port}/dashboard"

    @property
    def pids(self) -> list[int]:
        pids = [child.pid for child in self.children]
        if self.nginx is not None:
            pids += [self.nginx.pid] + child_pids(self.nginx.pid)
        return pids

    def set_rate(self, hz: float) -> None:
        for child in self.children:
            child.send(f"rate {hz:g}")

    def stats(self) -> dict:
        self.children[0].send("stats")
        return self.children[0].wait_event("stats", 10)

    def stop(self) -> None:
        if self.nginx is not None:
            stop_process(self.nginx)
        for child in self.children:
            child.stop()


NGINX_CONF = """daemon off;
master_process on;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 20000; use epoll; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {work}/body; proxy_temp_path {work}/proxy; fastcgi_temp_path {work}/fcgi;
    uwsgi_temp_path {work}/uwsgi; scgi_temp_path {work}/scgi;
    server {{
        listen 127.0.0.1:{port} {ssl} backlog=4096;
        {certificates}
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


def start_nginx(env: Environment, run_id: str, port: int, upstream: int, tls: bool) -> subprocess.Popen:
    """nginx (from PATH or /usr/sbin) proxying wss://127.0.0.1:port to dashd's ws://127.0.0.1:upstream."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        raise BenchError("dashd-nginx needs nginx (apt-get install nginx-light)")
    work = os.path.join(env.work_dir, f"{run_id}-nginx")
    os.makedirs(work, exist_ok=True)
    certificates = (
        (f"ssl_certificate {env.tls_cert}; ssl_certificate_key {env.tls_key}; ssl_protocols TLSv1.2 TLSv1.3;")
        if tls
        else ""
    )
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(
            NGINX_CONF.format(
                work=work, port=port, upstream=upstream, ssl="ssl" if tls else "", certificates=certificates
            )
        )
    process = subprocess.Popen(
        [nginx, "-p", work, "-c", conf],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(work, "stderr.log"), "ab"),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"nginx exited (status {process.returncode}); see {work}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    stop_process(process)
    raise BenchError("nginx did not listen within 20 s")


class Generator:
    """The load: several bench/client.js processes."""

    def __init__(self, env: Environment, url: str, session: Session, run_id: str) -> None:
        self.children: list[Child] = []
        for index, count in enumerate(clients_per_process(session.clients)):
            argv = [
                env.node,
                os.path.join(env.bench_dir, "client.js"),
                "--url",
                url,
                "--token",
                env.token,
                "--count",
                str(count),
                "--id",
                str(index),
                "--concurrency",
                "32",
            ]
            if session.deflate:
                argv.append("--deflate")
            log = os.path.join(env.work_dir, f"{run_id}-client{index}.log")
            self.children.append(Child(f"client {index}", argv, cwd=env.bench_dir, log_path=log))

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def wait_connected(self, timeout: float) -> dict:
        events = [child.wait_event("connected", timeout) for child in self.children]
        return {
            "ok": sum(e["ok"] for e in events),
            "failed": sum(e["failed"] for e in events),
            "connect_s": max(e["connect_ms"] for e in events) / 1000.0,
            "handshake_p50_ms": median(e.get("handshake_p50_ms") for e in events),
        }

    def broadcast(self, command: str) -> None:
        for child in self.children:
            child.send(command)

    def report(self) -> list[dict]:
        self.broadcast("report")
        return [child.wait_event("report", 30) for child in self.children]

    def stop(self) -> None:
        for child in self.children:
            child.send("quit")
        for child in self.children:
            child.stop()


def measure_window(
    server: ServerUnderTest, generator: Generator, rate: float, warmup: float, seconds: float, clients: int
) -> dict:
    server.set_rate(rate)
    time.sleep(warmup)
    ticks0 = server.stats()
    generator.broadcast("reset")
    server_cpu0 = [sum(t) for t in zip(*(process_cpu_split(pid) for pid in server.pids))]
    gen_cpu0 = sum(process_cpu_seconds(pid) for pid in generator.pids)
    busy0 = machine_busy_seconds()
    started = time.monotonic()
    time.sleep(seconds)
    reports = generator.report()
    elapsed = time.monotonic() - started
    ticks1 = server.stats()
    published = ticks1.get("published", 0) - ticks0.get("published", 0)
    # The servers' own clocks between the two stats replies (the replies
    # themselves can lag under load); the window's length if one lacks it.
    server_seconds = (ticks1["at"] - ticks0["at"]) if "at" in ticks0 and "at" in ticks1 else elapsed
    server_cpu1 = [sum(t) for t in zip(*(process_cpu_split(pid) for pid in server.pids))]
    server_user, server_sys = server_cpu1[0] - server_cpu0[0], server_cpu1[1] - server_cpu0[1]
    server_cpu = server_user + server_sys
    gen_cpu = sum(process_cpu_seconds(pid) for pid in generator.pids) - gen_cpu0
    busy = machine_busy_seconds() - busy0
    histogram = LatencyHistogram(bucket_ms=float(reports[0].get("bucket_ms", 0.25)))
    for report in reports:
        histogram.add(report["hist"], report["max_ms"])
    received = sum(r["received"] for r in reports)
    received_full = sum(r["received_full"] for r in reports)
    full_clients = sum(r["full_clients"] for r in reports)
    expected = full_clients * rate * elapsed
    deliveries = received / elapsed
    return {
        "rate_hz": rate,
        "clients": clients,
        "open": sum(r["open"] for r in reports),
        "deliveries_per_s": deliveries,
        "delivered": (received_full / expected) if expected else None,
        "p50_ms": histogram.percentile(0.50),
        "p95_ms": histogram.percentile(0.95),
        "p99_ms": histogram.percentile(0.99),
        "max_ms": histogram.max_ms if histogram.total else None,
        "missing": sum(r["missing"] for r in reports),
        "out_of_order": sum(r["out_of_order"] for r in reports),
        "degraded": sum(r["degraded"] for r in reports),
        "unexpected_closes": sum(r["unexpected_closes"] for r in reports),
        "bytes_per_update": (sum(r["bytes"] for r in reports) / received) if received else None,
        "server_cpu_pct": 100.0 * server_cpu / elapsed,
        "cpu_us_per_delivery": (1e6 * server_cpu / received) if received else None,
        "user_us_per_delivery": (1e6 * server_user / received) if received else None,
        "sys_us_per_delivery": (1e6 * server_sys / received) if received else None,
        "generator_cpu_pct": 100.0 * gen_cpu / elapsed,
        "other_cpu_pct": max(0.0, 100.0 * (busy - server_cpu - gen_cpu) / elapsed),
        "server_rss_mb": sum(process_rss_kb(pid) for pid in server.pids) / KB,
        # The publisher's schedule: what share of the window's ticks ran, and
        # how many periods a late tick folded into the next (never skipped).
        "published_pct": 100.0 * published / (rate * server_seconds) if rate and server_seconds > 0 else None,
        "ticks_coalesced": (ticks1.get("ticks_coalesced", 0) - ticks0.get("ticks_coalesced", 0))
        if "ticks_coalesced" in ticks1
        else None,
    }


def sustained(row: Mapping[str, Any]) -> bool:
    return (
        row["delivered"] is not None
        and row["delivered"] >= RAMP_MIN_DELIVERED
        and row["p99_ms"] is not None
        and row["p99_ms"] < RAMP_MAX_P99_MS
    )


def run_session(
    kind: str, session: Session, env: Environment, plan: Plan, run_id: str, say: Callable[[str], None]
) -> list[dict]:
    rows: list[dict] = []
    server = ServerUnderTest(kind, env, session, run_id)
    generator = None
    try:
        time.sleep(1.0)
        rss_before = sum(process_rss_kb(pid) for pid in server.pids)
        generator = Generator(env, server.url, session, run_id)
        connected = generator.wait_connected(timeout=max(60.0, session.clients / 50.0))
        if connected["failed"]:
            say(f"    {connected['failed']} of {session.clients} clients failed to connect")
        base = {
            "server": kind,
            "session": session.name,
            "connect_s": connected["connect_s"],
            "connected": connected["ok"],
        }
        if session.memory:
            time.sleep(3.0)  # let the handshakes' garbage go
            rss_after = sum(process_rss_kb(pid) for pid in server.pids)
            base["rss_per_conn_kb"] = (rss_after - rss_before) / max(1, connected["ok"])
        for window in session.windows:
            row = dict(
                base,
                scenario=window.name,
                **measure_window(server, generator, window.rate_hz, plan.warmup, plan.window, session.clients),
            )
            rows.append(row)
            say(format_progress(row))
        if session.ramp:
            rows.extend(run_ramp(server, generator, session, plan, base, say))
        if kind.startswith("dashd"):
            base_stats = server.stats()
            for row in rows:
                row.setdefault("write_stats", base_stats.get("write_stats"))
    finally:
        if generator is not None:
            generator.stop()
        server.stop()
    return rows


def run_ramp(
    server: ServerUnderTest, generator: Generator, session: Session, plan: Plan, base: dict, say: Callable[[str], None]
) -> list[dict]:
    rows = []
    best: dict | None = None
    failed_at: float | None = None
    for rate in session.ramp:
        row = dict(
            base,
            scenario=f"ramp {rate:g}Hz",
            **measure_window(server, generator, rate, plan.warmup, plan.ramp_window, session.clients),
        )
        row["sustained"] = sustained(row)
        rows.append(row)
        say(format_progress(row))
        if not row["sustained"]:
            failed_at = rate
            break
        best = row
    low = best["rate_hz"] if best else 0.0
    for _ in range(plan.ramp_refine if failed_at is not None and best is not None else 0):
        rate = round((low + failed_at) / 2.0, 1)
        server.set_rate(IDLE_HZ)
        time.sleep(plan.warmup)  # let the failed step's backlog drain
        row = dict(
            base,
            scenario=f"ramp {rate:g}Hz",
            **measure_window(server, generator, rate, plan.warmup, plan.ramp_window, session.clients),
        )
        row["sustained"] = sustained(row)
        rows.append(row)
        say(format_progress(row))
        if row["sustained"]:
            best, low = row, rate
        else:
            failed_at = rate
    summary = dict(
        base,
        scenario="ramp: sustained",
        sustained_rate_hz=best["rate_hz"] if best else None,
        sustained_deliveries_per_s=best["deliveries_per_s"] if best else 0.0,
        ceiling=failed_at is None,
    )
    rows.append(summary)
    return rows
