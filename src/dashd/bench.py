"""`dashd bench` / `python -m dashd.bench`: dashd's load tool and its Node
`ws` baseline, run one after the other under the same load (docs/benchmarks.md).

Three commands:

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

Every target is 127.0.0.1; every wait is bounded; every child process is
ended, by its pid, when the run ends or fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

SECOND = 1.0
KB = 1024

# The synthetic sample: real catalogue names, values that wander a little
# each tick; with the envelope it is ~300 bytes of JSON, like a small host.
BENCH_METRICS: dict[str, float] = {
    "cpu_usage": 12.5, "cpu_core_0": 11.25, "cpu_core_1": 13.75, "memory_usage": 41.3,
    "network_traffic": 15234.5, "disk_usage": 57.12, "network_rx": 7617.2, "network_tx": 7617.3,
}
BENCH_HOST = "bench-0"
IDLE_HZ = 1.0  # what both servers publish while clients connect and between windows

# Targets from the issues (15, 17), checked in the summary.
TARGET_DELIVERIES_RATIO = 1.0
TARGET_CPU_RATIO = 1.0
TARGET_P99_MS = 40.0
TARGET_TLS_CPU_RATIO = 1.5
TARGET_TLS_P99_MS = 40.0
TARGET_RSS_PER_CONN_KB = 15.0
TARGET_DEFLATE_CPU_RATIO = 1.3
DEFAULT_SERVERS = "dashd,ws,floor"
RAMP_MIN_DELIVERED = 0.95
RAMP_MAX_P99_MS = 100.0


# --------------------------------------------------------------------------
# Synthetic samples (used by `serve`)

def synthetic_metrics(n: int, base: Mapping[str, float] = BENCH_METRICS) -> dict[str, float]:
    """Sample number `n`: the same formula bench/server.js uses."""
    return {name: round(value + ((n * (i + 3)) % 97) / 10, 2) for i, (name, value) in enumerate(base.items())}


class SyntheticSampler:
    """Stands in for MetricsCollector inside the real CollectorService, so the
    bench's samples travel the daemon's own path: collector tick, bus, rule
    engine, hub (sequence, ring, store), fan-out."""

    def __init__(self, host: str, wall_clock_ms: Callable[[], int]) -> None:
        self.host = host
        self.count = 0
        self._wall_clock_ms = wall_clock_ms

    def prime(self) -> None:
        pass

    def sample(self):
        from dashd.collect.collector import Sample

        self.count += 1
        return Sample(host=self.host, timestamp_ms=self._wall_clock_ms(), metrics=synthetic_metrics(self.count))


# --------------------------------------------------------------------------
# Numbers

@dataclass
class LatencyHistogram:
    """Counts per fixed-width bucket (the clients' 0.25 ms buckets), merged
    across generator processes."""

    bucket_ms: float = 0.25
    counts: dict[int, int] = field(default_factory=dict)
    max_ms: float = 0.0

    def add(self, sparse: Mapping[Any, int], max_ms: float) -> None:
        for index, count in sparse.items():
            index = int(index)
            self.counts[index] = self.counts.get(index, 0) + int(count)
        self.max_ms = max(self.max_ms, float(max_ms))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """Upper edge of the bucket holding the q-quantile (ms)."""
        total = self.total
        if total == 0:
            return None
        rank = q * total
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min((index + 1) * self.bucket_ms, self.max_ms) if self.max_ms else (index + 1) * self.bucket_ms
        return self.max_ms


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(present) if present else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator in (None, 0):
        return None
    return numerator / denominator


# --------------------------------------------------------------------------
# /proc

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads, from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    user, system = process_cpu_split(pid)
    return user + system


def process_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_busy_seconds() -> float:
    """Busy CPU time of the whole machine (all cores), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / CLOCK_TICKS


# --------------------------------------------------------------------------
# Child processes

class Child:
    """A child process speaking JSON lines on stdout, commands on stdin."""

    def __init__(self, name: str, argv: Sequence[str], cwd: str | None = None, log_path: str | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        stderr = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=stderr, env=dict(env) if env is not None else None)
        if log_path:
            stderr.close()
        self.events: queue.Queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("{"):
                continue
            try:
                self.events.put(json.loads(line))
            except ValueError:
                continue
        self.events.put({"event": "exit"})

    def send(self, command: str) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write((command + "\n").encode())
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                pass

    def wait_event(self, kind: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"{self.name}: no '{kind}' within {timeout:g}s{self._tail()}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event.get("event") == kind:
                return event
            if event.get("event") == "exit":
                raise BenchError(f"{self.name} exited (status {self.process.wait()}){self._tail()}")

    def _tail(self) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").strip().splitlines()[-8:]
        return ("\n  " + "\n  ".join(lines)) if lines else ""

    def stop(self, grace: float = 3.0) -> None:
        """quit, then SIGTERM, then SIGKILL: always by this child's own pid."""
        if self.process.poll() is None:
            self.send("quit")
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                os.kill(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Scenarios

@dataclass(frozen=True)
class Window:
    name: str
    rate_hz: float


@dataclass(frozen=True)
class Session:
    """One server start with one set of clients, measured in windows."""

    name: str
    clients: int
    windows: tuple[Window, ...] = ()
    ramp: tuple[float, ...] = ()  # ascending rates; stop at the first that is not sustained
    deflate: bool = False
    tls: bool = False
    memory: bool = False  # report RSS per connection (measured after connecting, before the windows)


@dataclass(frozen=True)
class Plan:
    sessions: tuple[Session, ...]
    repeats: int
    warmup: float
    window: float
    ramp_window: float
    ramp_refine: int  # extra bisection steps between the last sustained and the first failed rate
    collector_seconds: float


def full_plan() -> Plan:
    return Plan(
        sessions=(
            Session("1k", 1000, (Window("1000x10Hz", 10), Window("1000x100Hz", 100)),
                    ramp=(20, 30, 40, 50, 60, 70, 80, 90, 100, 120, 140)),
            Session("5k", 5000, (Window("5000x10Hz", 10),)),
            Session("10k-idle", 10000, (Window("10000x1Hz idle", 1),), memory=True),
            Session("1k-deflate", 1000, (Window("1000x10Hz deflate", 10),), deflate=True),
            Session("1k-tls", 1000, (Window("1000x10Hz TLS", 10),), tls=True),
        ),
        repeats=2, warmup=3.0, window=8.0, ramp_window=5.0, ramp_refine=1, collector_seconds=60.0,
    )


def quick_plan() -> Plan:
    return Plan(
        sessions=(
            Session("1k", 1000, (Window("1000x10Hz", 10), Window("1000x100Hz", 100)),
                    ramp=(30, 50, 70, 90, 110)),
            Session("10k-idle", 10000, (Window("10000x1Hz idle", 1),), memory=True),
            Session("1k-deflate", 1000, (Window("1000x10Hz deflate", 10),), deflate=True),
            Session("1k-tls", 1000, (Window("1000x10Hz TLS", 10),), tls=True),
        ),
        repeats=1, warmup=1.5, window=3.0, ramp_window=2.5, ramp_refine=0, collector_seconds=10.0,
    )


# --------------------------------------------------------------------------
# Running

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
            if kind == "ws":
                argv = [env.node, os.path.join(env.bench_dir, "server.js"), "--port", "0", "--rate", str(IDLE_HZ),
                        "--metrics", json.dumps(BENCH_METRICS), "--host-name", BENCH_HOST]
                if session.deflate:
                    argv.append("--deflate")
            elif kind == "floor":
                # The kernel's limit: handshake, then one send() per socket (bench/floor.py).
                argv = [env.python, os.path.join(env.bench_dir, "floor.py"), "--port", "0", "--rate", str(IDLE_HZ),
                        "--metrics", json.dumps(BENCH_METRICS), "--host-name", BENCH_HOST]
            else:
                state = os.path.join(env.work_dir, f"{run_id}-state{worker}")
                shutil.copytree(env.state_dir, state)
                argv = [env.python, "-m", "dashd.bench", "serve", "--state-dir", state, "--port", str(port),
                        "--rate", str(IDLE_HZ)]
                if kind == "dashd-stock":
                    argv.append("--stock")
                if kind == "dashd-py":
                    child_env = dict(os.environ, DASHD_FANOUT_LOOP="python")  # the flat loop without the C extension
                if workers > 1:
                    argv.append("--reuse-port")
            if session.tls and kind != "dashd-nginx":
                argv += ["--tls-key", env.tls_key, "--tls-cert", env.tls_cert]
            self.children.append(Child(f"{kind} server {worker}", argv,
                                       cwd=env.bench_dir if kind in ("ws", "floor") else None,
                                       log_path=log, env=child_env))
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
    certificates = (f"ssl_certificate {env.tls_cert}; ssl_certificate_key {env.tls_key}; "
                    "ssl_protocols TLSv1.2 TLSv1.3;") if tls else ""
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(NGINX_CONF.format(work=work, port=port, upstream=upstream, ssl="ssl" if tls else "",
                                  certificates=certificates))
    process = subprocess.Popen([nginx, "-p", work, "-c", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "stderr.log"), "ab"))
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


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (nginx's worker), from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def stop_process(process: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL: by this process's own pid."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            process.send_signal(sig)
            process.wait(timeout=grace)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


class Generator:
    """The load: several bench/client.js processes."""

    def __init__(self, env: Environment, url: str, session: Session, run_id: str) -> None:
        self.children: list[Child] = []
        for index, count in enumerate(clients_per_process(session.clients)):
            argv = [env.node, os.path.join(env.bench_dir, "client.js"), "--url", url, "--token", env.token,
                    "--count", str(count), "--id", str(index), "--concurrency", "32"]
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


def measure_window(server: ServerUnderTest, generator: Generator, rate: float, warmup: float,
                   seconds: float, clients: int) -> dict:
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
        if "ticks_coalesced" in ticks1 else None,
    }


def sustained(row: Mapping[str, Any]) -> bool:
    return (row["delivered"] is not None and row["delivered"] >= RAMP_MIN_DELIVERED
            and row["p99_ms"] is not None and row["p99_ms"] < RAMP_MAX_P99_MS)


def run_session(kind: str, session: Session, env: Environment, plan: Plan, run_id: str,
                say: Callable[[str], None]) -> list[dict]:
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
        base = {"server": kind, "session": session.name, "connect_s": connected["connect_s"],
                "connected": connected["ok"]}
        if session.memory:
            time.sleep(3.0)  # let the handshakes' garbage go
            rss_after = sum(process_rss_kb(pid) for pid in server.pids)
            base["rss_per_conn_kb"] = (rss_after - rss_before) / max(1, connected["ok"])
        for window in session.windows:
            row = dict(base, scenario=window.name,
                       **measure_window(server, generator, window.rate_hz, plan.warmup, plan.window, session.clients))
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


def run_ramp(server: ServerUnderTest, generator: Generator, session: Session, plan: Plan, base: dict,
             say: Callable[[str], None]) -> list[dict]:
    rows = []
    best: dict | None = None
    failed_at: float | None = None
    for rate in session.ramp:
        row = dict(base, scenario=f"ramp {rate:g}Hz",
                   **measure_window(server, generator, rate, plan.warmup, plan.ramp_window, session.clients))
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
        row = dict(base, scenario=f"ramp {rate:g}Hz",
                   **measure_window(server, generator, rate, plan.warmup, plan.ramp_window, session.clients))
        row["sustained"] = sustained(row)
        rows.append(row)
        say(format_progress(row))
        if row["sustained"]:
            best, low = row, rate
        else:
            failed_at = rate
    summary = dict(base, scenario="ramp: sustained", sustained_rate_hz=best["rate_hz"] if best else None,
                   sustained_deliveries_per_s=best["deliveries_per_s"] if best else 0.0,
                   ceiling=failed_at is None)
    rows.append(summary)
    return rows


def format_progress(row: Mapping[str, Any]) -> str:
    def num(key: str, spec: str) -> str:
        value = row.get(key)
        return format(value, spec) if value is not None else "-"
    return (f"    {row['server']:<11} {row['scenario']:<20} {num('deliveries_per_s', ',.0f')}/s "
            f"delivered {num('delivered', '.1%')} p99 {num('p99_ms', '.1f')} ms "
            f"cpu {num('server_cpu_pct', '.0f')}% ({num('cpu_us_per_delivery', '.1f')} us/delivery) "
            f"gen {num('generator_cpu_pct', '.0f')}% other {num('other_cpu_pct', '.0f')}%")


# --------------------------------------------------------------------------
# Summary

TABLE_COLUMNS = (
    ("deliveries/s", "deliveries_per_s", ",.0f"),
    ("deliv%", "delivered", ".1%"),
    ("p50", "p50_ms", ".1f"),
    ("p95", "p95_ms", ".1f"),
    ("p99", "p99_ms", ".1f"),
    ("max", "max_ms", ".0f"),
    ("miss", "missing", ".0f"),
    ("ooo", "out_of_order", ".0f"),
    ("B/upd", "bytes_per_update", ".0f"),
    ("srv cpu%", "server_cpu_pct", ".0f"),
    ("us/deliv", "cpu_us_per_delivery", ".1f"),
    ("xfloor", "vs_floor", ".2f"),
    ("xws", "vs_ws", ".2f"),
    ("usr", "user_us_per_delivery", ".1f"),
    ("sys", "sys_us_per_delivery", ".1f"),
    ("gen cpu%", "generator_cpu_pct", ".0f"),
    ("other%", "other_cpu_pct", ".0f"),
    ("rss MB", "server_rss_mb", ".0f"),
    ("KB/conn", "rss_per_conn_kb", ".1f"),
    ("conn s", "connect_s", ".1f"),
    ("pub%", "published_pct", ".0f"),
    ("coal", "ticks_coalesced", ".0f"),
)


def summarize(rows: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Median over repeats of every numeric column, per (scenario, server).
    Ramp steps are folded into the 'ramp: sustained' line."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for row in rows:
        if row["scenario"].startswith("ramp ") and not row["scenario"].startswith("ramp:"):
            continue
        key = (row["scenario"], row["server"])
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(row)
    summary = []
    scenarios = list(dict.fromkeys(key[0] for key in order))
    servers = list(dict.fromkeys(key[1] for key in order))
    for key in sorted(order, key=lambda k: (scenarios.index(k[0]), servers.index(k[1]))):
        members = groups[key]
        merged: dict[str, Any] = {"scenario": key[0], "server": key[1], "repeats": len(members)}
        for name in {name for member in members for name in member}:
            values = [member.get(name) for member in members]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values if v is not None) \
                    and any(v is not None for v in values):
                merged[name] = median(values)
            elif name not in merged:
                merged[name] = values[-1]
        if key[0] == "ramp: sustained":
            merged["deliveries_per_s"] = merged.get("sustained_deliveries_per_s")
        summary.append(merged)
    add_ratios(summary)
    return summary


def add_ratios(summary: Sequence[dict]) -> None:
    """Every row as a ratio to the floor and to ws in the same scenario: CPU
    per delivery over theirs, or, on the ramp line, sustained deliveries/s
    over theirs."""
    by_scenario: dict[str, dict[str, Mapping[str, Any]]] = {}
    for row in summary:
        by_scenario.setdefault(row["scenario"], {})[row["server"]] = row
    for row in summary:
        key = "deliveries_per_s" if row["scenario"] == "ramp: sustained" else "cpu_us_per_delivery"
        peers = by_scenario[row["scenario"]]
        for server, column in (("floor", "vs_floor"), ("ws", "vs_ws")):
            peer = peers.get(server)
            row[column] = ratio(row.get(key), peer.get(key)) if peer is not None else None


def result_line(summary: Sequence[Mapping[str, Any]]) -> tuple[str, dict]:
    def pick(scenario: str, server: str, key: str) -> float | None:
        for row in summary:
            if row["scenario"] == scenario and row["server"] == server:
                return row.get(key)
        return None

    values = {
        "deliveries_ratio": ratio(pick("ramp: sustained", "dashd", "sustained_deliveries_per_s"),
                                  pick("ramp: sustained", "ws", "sustained_deliveries_per_s")),
        "cpu_per_delivery_ratio": ratio(pick("1000x100Hz", "dashd", "cpu_us_per_delivery"),
                                        pick("1000x100Hz", "ws", "cpu_us_per_delivery")),
        "p99_ms": pick("1000x10Hz", "dashd", "p99_ms"),
        "rss_per_conn_kb": pick("10000x1Hz idle", "dashd", "rss_per_conn_kb"),
        "floor_ratio": ratio(pick("1000x100Hz", "dashd", "cpu_us_per_delivery"),
                             pick("1000x100Hz", "floor", "cpu_us_per_delivery")),
        "tls_cpu_per_delivery_ratio": ratio(pick("1000x10Hz TLS", "dashd", "cpu_us_per_delivery"),
                                            pick("1000x10Hz TLS", "ws", "cpu_us_per_delivery")),
    }
    text = "RESULT " + " ".join(f"{name}={'nan' if value is None else f'{value:.3g}' if name.endswith('ratio') else f'{value:.1f}'}"
                                for name, value in values.items())
    return text, values


def target_checks(summary: Sequence[Mapping[str, Any]], values: Mapping[str, float | None]) -> list[str]:
    def pick(scenario: str, server: str, key: str) -> float | None:
        for row in summary:
            if row["scenario"] == scenario and row["server"] == server:
                return row.get(key)
        return None

    deflate_ratio = ratio(pick("1000x10Hz deflate", "dashd", "cpu_us_per_delivery"),
                          pick("1000x10Hz", "dashd", "cpu_us_per_delivery"))
    checks = [
        ("sustained deliveries/s at 1,000 clients vs ws", values["deliveries_ratio"], ">=", TARGET_DELIVERIES_RATIO),
        ("CPU per delivery at 1,000 x 100 Hz vs ws", values["cpu_per_delivery_ratio"], "<=", TARGET_CPU_RATIO),
        ("p99 at 1,000 x 10 Hz (ms)", values["p99_ms"], "<=", TARGET_P99_MS),
        ("RSS per idle connection at 10,000 (KB)", values["rss_per_conn_kb"], "<=", TARGET_RSS_PER_CONN_KB),
        ("deflate CPU per delivery vs uncompressed (dashd)", deflate_ratio, "<=", TARGET_DEFLATE_CPU_RATIO),
        ("TLS CPU per delivery at 1,000 x 10 Hz vs ws", values["tls_cpu_per_delivery_ratio"], "<=",
         TARGET_TLS_CPU_RATIO),
        ("TLS p99 at 1,000 x 10 Hz (ms)", pick("1000x10Hz TLS", "dashd", "p99_ms"), "<=", TARGET_TLS_P99_MS),
    ]
    lines = []
    for label, value, op, target in checks:
        if value is None:
            verdict = "not measured"
        else:
            met = value >= target if op == ">=" else value <= target
            verdict = "met" if met else "MISSED"
        shown = "-" if value is None else f"{value:.3g}"
        lines.append(f"  {label}: {shown} (target {op} {target:g}): {verdict}")
    return lines


def format_loop_cost(loop_cost: Mapping[str, Any]) -> str:
    """The in-process loop measurement, each loop against the floor."""
    loops = loop_cost["loops"]
    floor = loops["floor"]["us_per_delivery"]
    lines = [f"\nbroadcast loop alone ({loop_cost['clients']:,} loopback sockets, {loop_cost['rounds']} rounds, "
             "CPU per delivery):"]
    for name, cost in loops.items():
        above = "" if name == "floor" else f", {cost['us_per_delivery'] - floor:+.2f} us vs the floor"
        lines.append(f"  {name:<12} {cost['us_per_delivery']:.2f} us (user {cost['user_us']:.2f}, "
                     f"sys {cost['sys_us']:.2f}){above}")
    return "\n".join(lines)


def format_table(summary: Sequence[Mapping[str, Any]]) -> str:
    header = ["scenario", "server"] + [title for title, _, _ in TABLE_COLUMNS]
    body = []
    for row in summary:
        cells = [row["scenario"], row["server"]]
        for _, key, spec in TABLE_COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else format(value, spec))
        body.append(cells)
    widths = [max(len(str(line[i])) for line in [header] + body) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for cells in body:
        lines.append("| " + " | ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w)
                                       for i, (c, w) in enumerate(zip(cells, widths))) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# `run`

def find_bench_dir(explicit: str | None) -> str:
    candidates = [explicit] if explicit else [os.environ.get("DASHD_BENCH_DIR"), os.path.join(os.getcwd(), "bench"),
                                              os.path.join(os.path.dirname(__file__), "..", "..", "bench")]
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
    from dashd.auth.tokens import TokenIssuer, load_or_create_secret
    from dashd.auth.devcert import write_self_signed

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
    return Environment(python=sys.executable, node=node, bench_dir=bench_dir, work_dir=work_dir, token=token,
                       state_dir=state, tls_key=key, tls_cert=cert)


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
        say(f"dashd bench ({'quick' if args.quick else 'full'}): {len(plan.sessions)} sessions x "
            f"{len(servers)} servers x {plan.repeats} repeats; logs in {work_dir}")
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
        print(f"\ncollector alone (psutil at 1 Hz, {collector['seconds']:g}s): {collector['cpu_pct']:.2f}% of one core, "
              f"{collector['mean_sample_ms']:.2f} ms per sample (max {collector['max_sample_ms']:.2f} ms)")
    if loop_cost is not None:
        print(format_loop_cost(loop_cost))
    line, values = result_line(summary)
    print("\ntargets:")
    for check in target_checks(summary, values):
        print(check)
    print(f"\nmachine: {os.cpu_count()} cores; total {time.monotonic() - started:.0f}s; "
          "'other%' is CPU used by processes outside the bench during each window")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "summary": summary, "collector": collector, "loop": loop_cost, "result": values,
                       "quick": args.quick}, f, indent=1, default=str)
    print(line, flush=True)
    return 0


# --------------------------------------------------------------------------
# `loop`: the flat broadcast loop against the floor, in one process

def measure_fanout_loop(python: str, clients: int, rounds: int) -> dict:
    child = Child("loop", [python, "-m", "dashd.bench", "loop", "--clients", str(clients), "--rounds", str(rounds)])
    try:
        return child.wait_event("loop", 300)
    finally:
        child.stop()


class _LoopTransport:
    """What the flat writer reads of a Twisted tcp.Server, around a real socket."""

    dataBuffer = b""
    _tempDataLen = 0
    producerPaused = False
    disconnecting = False
    _writeDisconnected = False
    connected = True


class _LoopProtocol:
    """What the flat writer reads of an open DashboardServerProtocol."""

    send_queue = ()

    def __init__(self, sock: socket.socket) -> None:
        from autobahn.websocket.protocol import WebSocketProtocol

        self.state = WebSocketProtocol.STATE_OPEN
        self.send_state = WebSocketProtocol.SEND_STATE_GROUND
        self.flat_target = (_LoopTransport(), sock, sock.fileno(), None)

    def send_frame(self, frame) -> None:
        raise BenchError("the flat writer refused an idle connection")


def fanout_loop_cost(args: argparse.Namespace) -> int:
    """CPU (user + system, getrusage) per delivery of one ~300-byte frame to
    N loopback TCP sockets: the floor's loop (`sock.send` per socket), and
    the hub's flat loop (ClientStream.take_directly, then FlatWriter) with
    each available send loop; rounds alternate so load hits all alike. The
    receiving ends are drained between rounds, outside the measurement."""
    import resource

    from twisted.internet.task import Clock

    from dashd.stream.streams import METRICS_UPDATE, ClientStream, FrameCache, StreamMessage
    from dashd.wire.broadcast import FlatWriter, available_loops

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(args.clients + 16)
    readers, senders = [], []
    try:
        for _ in range(args.clients):
            reader = socket.create_connection(listener.getsockname())
            sender, _ = listener.accept()
            reader.setblocking(False)
            sender.setblocking(False)
            readers.append(reader)
            senders.append(sender)
        clock = Clock()
        streams = []
        for sender in senders:
            stream = ClientStream(_LoopProtocol(sender), clock, wants_metrics=True, wants_notifications=True)
            stream.live = True
            streams.append(stream)
        seq = [0]

        def flat(writer: FlatWriter) -> None:
            seq[0] += 1
            message = StreamMessage(seq[0], METRICS_UPDATE, 1_700_000_000_000, BENCH_HOST,
                                    synthetic_metrics(seq[0]))
            direct = [stream.sink for stream in streams if stream.take_directly(message)]
            writer.write_many(FrameCache(message).frame(None), direct)

        frame_bytes = b"x" * 299

        def floor(_: Any) -> None:
            for sender in senders:
                sender.send(frame_bytes)

        kinds: dict[str, tuple[Callable[[Any], None], Any]] = {"floor": (floor, None)}
        for loop in available_loops():
            kinds[f"flat-{loop}"] = (flat, FlatWriter(loop=loop))
        used = {name: [0.0, 0.0] for name in kinds}
        for _ in range(args.rounds):
            for name, (run_once, argument) in kinds.items():
                before = resource.getrusage(resource.RUSAGE_SELF)
                run_once(argument)
                after = resource.getrusage(resource.RUSAGE_SELF)
                used[name][0] += after.ru_utime - before.ru_utime
                used[name][1] += after.ru_stime - before.ru_stime
                for reader in readers:
                    try:
                        while reader.recv(1 << 20):
                            pass
                    except BlockingIOError:
                        pass
        deliveries = args.clients * args.rounds
        result = {name: {"us_per_delivery": 1e6 * (user + system) / deliveries, "user_us": 1e6 * user / deliveries,
                         "sys_us": 1e6 * system / deliveries} for name, (user, system) in used.items()}
        emit({"event": "loop", "clients": args.clients, "rounds": args.rounds, "loops": result})
    finally:
        for sock in readers + senders + [listener]:
            sock.close()
    return 0


# --------------------------------------------------------------------------
# `collector`

def measure_collector(python: str, seconds: float) -> dict:
    child = Child("collector", [python, "-m", "dashd.bench", "collector", "--seconds", str(seconds), "--only-host"])
    try:
        return child.wait_event("collector", seconds + 60)
    finally:
        child.stop()


def collector_cost(args: argparse.Namespace) -> int:
    """The real CollectorService with the psutil reader at 1 Hz and (unless
    --only-host) every issue 19 collector at its default cadence, alone in
    a reactor, for `seconds`; prints this process's CPU over that time, the
    longest any tick held the reactor, the process table's cost and the
    number of distinct series, and ends with a RESULT line."""
    import psutil
    from twisted.internet import reactor

    from dashd.collect.assembly import build_sources
    from dashd.collect.collector import CollectorService, MetricsCollector, PsutilReader
    from dashd.collect.processes import encode_snapshot
    from dashd.collect.families import FAMILY_BY_NAME
    from dashd.collect.series_feed import SeriesFolding
    from dashd.collect.sources import PROCESSES_TOPIC, SourceScheduler
    from dashd.settings import load_settings
    from dashd.stream.bus import METRICS_TOPIC, InMemoryBus
    from dashd.stream.streams import METRICS_UPDATE, StreamMessage, encode
    from dashd.timefmt import now_ms

    durations: list[float] = []
    bus = InMemoryBus()
    # As makeService wires them: the psutil read in a thread, the
    # collectors' readings folded into the host samples.
    feed = SeriesFolding(bus, "bench")
    service = CollectorService(MetricsCollector(PsutilReader("/"), "bench", lambda: 0), feed, reactor,
                               args.interval, on_sample_duration=durations.append, threaded=True)
    scheduler = None
    if not args.only_host:
        # Default cadences, as `collectors = all` runs them.
        sources, intervals = build_sources(load_settings({"collectors": "all"}, environ={}))
        scheduler = SourceScheduler(sources, intervals, feed, reactor, "bench", now_ms)
    names: set[str] = set()
    update_sizes: list[int] = []

    def on_sample(topic: str, sample: Any) -> None:
        names.update(name for name in sample.metrics if "{" in name or name in FAMILY_BY_NAME)
        # The metrics_update a `*` subscriber gets for this sample.
        update_sizes.append(len(encode(StreamMessage(1, METRICS_UPDATE, sample.timestamp_ms, sample.host,
                                                     sample.metrics).envelope())))

    bus.subscribe(METRICS_TOPIC, on_sample)
    snapshot_sizes: list[int] = []
    bus.subscribe(PROCESSES_TOPIC, lambda topic, snapshot: (snapshot_sizes.append(len(encode_snapshot(snapshot))),
                                                            result.update(processes_on_host=snapshot.table.total)))
    this = psutil.Process()
    result: dict = {}
    # Idle children, so the process table is measured at the issue's ~300
    # processes on a machine that has fewer; each is ended by its own pid.
    spawned = [subprocess.Popen(["sleep", str(args.seconds + 60)]) for _ in range(max(0, args.spawn))]

    def begin() -> None:
        service.startService()
        if scheduler is not None:
            scheduler.startService()
        result["cpu0"] = this.cpu_times()
        result["t0"] = time.monotonic()
        # A quarter interval past the last tick, so its threaded psutil read
        # has published (CPU is divided by the real elapsed time).
        reactor.callLater(args.seconds + args.interval / 4, finish)

    def finish() -> None:
        cpu = this.cpu_times()
        elapsed = time.monotonic() - result["t0"]
        used = (cpu.user - result["cpu0"].user) + (cpu.system - result["cpu0"].system)
        service.stopService()
        for child in spawned:
            child.kill()
            child.wait()
        event = {"event": "collector", "seconds": round(elapsed, 1), "samples": len(durations),
                 "cpu_pct": 100.0 * used / elapsed,
                 "mean_sample_ms": 1000.0 * statistics.mean(durations) if durations else None,
                 "max_sample_ms": 1000.0 * max(durations) if durations else None,
                 "host_max_block_ms": 1000.0 * service.max_block_seconds,
                 "host_max_block_cpu_ms": 1000.0 * service.max_block_cpu_seconds,
                 "update_bytes_mean": statistics.mean(update_sizes) if update_sizes else 0,
                 "update_bytes_max": max(update_sizes) if update_sizes else 0}
        if scheduler is not None:
            scheduler.stopService()
            event.update(collectors_report(scheduler, names, service.max_block_seconds))
            event["snapshot_bytes"] = statistics.mean(snapshot_sizes) if snapshot_sizes else 0
            event["processes_on_host"] = result.get("processes_on_host", 0)
        emit(event)
        if scheduler is not None:
            for name, stats in event["per_collector"].items():
                print(f"  {name:12s} reads {stats['reads']:4d}  read {stats['mean_read_ms']:7.2f} ms "
                      f"(cpu {stats['mean_read_cpu_ms']:6.2f} ms, max {stats['max_read_ms']:7.2f} ms)  "
                      f"reactor max {stats['max_block_ms']:.3f} ms (cpu {stats['max_block_cpu_ms']:.3f})  series {stats['series']}", flush=True)
            print(f"  process table of {event['processes_on_host']} processes: "
                  f"{event['process_snapshot_cpu_ms']:.2f} ms of CPU per snapshot "
                  f"({event['process_snapshot_ms']:.2f} ms wall in its thread on this machine's load); "
                  f"look-back encoding {event['snapshot_bytes']:.0f} bytes per snapshot", flush=True)
            print(f"  host sample: psutil read {event['mean_sample_ms']:.2f} ms mean, {event['max_sample_ms']:.2f} ms max "
                  f"(in a thread); reactor max {event['host_max_block_ms']:.3f} ms (cpu {event['host_max_block_cpu_ms']:.3f}); metrics_update for '*': "
                  f"{event['update_bytes_mean']:.0f} bytes mean, {event['update_bytes_max']} max", flush=True)
            print(f"RESULT collector_cpu_percent={event['cpu_pct']:.2f} max_tick_block_ms={event['max_tick_block_ms']:.2f} "
                  f"process_snapshot_ms={event['process_snapshot_cpu_ms']:.2f} series={event['series']}", flush=True)
        reactor.stop()

    reactor.callWhenRunning(begin)
    reactor.run()
    return 0


def collectors_report(scheduler: Any, names: set[str], host_block_seconds: float) -> dict:
    """The figures of issue 19's budget from a stopped SourceScheduler.

    max_tick_block_ms covers every tick on the reactor thread: the issue 19
    sources (start a read, publish its result) and the seed's host
    collector (start its threaded psutil read; rates, folding and publish)."""
    per = {}
    for name, stats in scheduler.stats.items():
        per[name] = {"reads": stats.reads, "failures": stats.failures, "skipped": stats.skipped,
                     "series": stats.series, "mean_read_ms": 1000.0 * stats.mean_read_seconds,
                     "mean_read_cpu_ms": 1000.0 * stats.mean_read_cpu_seconds,
                     "max_read_ms": 1000.0 * stats.max_read_seconds,
                     "max_block_ms": 1000.0 * stats.max_block_seconds,
                     "max_block_cpu_ms": 1000.0 * stats.max_block_cpu_seconds}
    processes = per.get("processes", {})
    return {
        "per_collector": per,
        "max_tick_block_ms": 1000.0 * max(scheduler.max_block_seconds, host_block_seconds),
        "max_source_block_ms": 1000.0 * scheduler.max_block_seconds,
        "process_snapshot_ms": processes.get("mean_read_ms", 0.0),
        "process_snapshot_cpu_ms": processes.get("mean_read_cpu_ms", 0.0),
        "series": len(names),
    }


# --------------------------------------------------------------------------
# `serve`

def emit(event: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def serve(args: argparse.Namespace) -> int:
    """dashd's service tree on 127.0.0.1 with the synthetic sampler; stdin
    takes `rate HZ`, `stats`, `profile-start`, `profile-stop PATH`, `quit`."""
    if args.reuse_port:
        # Several processes on one port (the multi-process experiment): the
        # kernel spreads connections over their sockets. Handed to Twisted
        # the systemd way, as fd 3, before Twisted reads the environment.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", args.port))
        listener.listen(4096)
        listener.setblocking(False)
        os.dup2(listener.fileno(), 3)
        os.set_inheritable(3, False)
        os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="dashd")
        assert "twisted.internet.endpoints" not in sys.modules
    from twisted.internet import reactor, stdio
    from twisted.logger import FileLogObserver, LogLevel, LogLevelFilterPredicate, FilteringLogObserver, \
        formatEventAsClassicLogText, globalLogBeginner
    from twisted.protocols.basic import LineReceiver

    from dashd.wire import fastpath
    from dashd.wire.protocol import DashboardServerFactory
    from dashd.settings import load_settings
    from dashd.tap import build_daemon
    from dashd.timefmt import now_ms

    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(FileLogObserver(sys.stderr, lambda e: formatEventAsClassicLogText(e)), [predicate])],
        redirectStandardIO=False)
    if args.stock:
        DashboardServerFactory.direct_writes = False
    interface = "interface=127.0.0.1"
    values: dict[str, Any] = {
        "state_dir": args.state_dir,
        "listen": f"tcp:{args.port}:{interface}:backlog=4096",
        "host_name": BENCH_HOST,
        "max_connections": 200_000,
        "max_connections_per_ip": 200_000,
        "max_rate_hz": 100,
        "static": os.path.join(args.state_dir, "no-frontend"),
        "collectors": "host",  # the fan-out is measured with the synthetic samples alone
    }
    if args.reuse_port:
        values["listen"] = "systemd:domain=INET:index=0"
    if args.tls_key:
        values["listen"] = f"tcp:0:{interface}"
        values["tls_listen"] = f"ssl:{args.port}:privateKey={args.tls_key}:certKey={args.tls_cert}:{interface}"
    settings = load_settings(values, environ={})
    daemon = build_daemon(settings, reactor)
    sampler = SyntheticSampler(BENCH_HOST, now_ms)
    collector = daemon.collector
    # Bench-only seam: the real CollectorService, bus and hub, fed synthetic
    # samples instead of psutil readings.
    collector.sample_with(sampler)  # the real service tree, fed synthetic samples
    collector.interval = 1.0 / args.rate
    profiler: list = []

    class Control(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            command, _, value = line.decode().strip().partition(" ")
            if command == "rate":
                hz = float(value)
                collector.set_interval(1.0 / hz)
            elif command == "stats":
                emit({"event": "stats", "published": sampler.count, "seq": daemon.hub.seq,
                      "ticks_coalesced": collector.ticks[1], "at": time.monotonic(),
                      "clients": len(daemon.core.connections), "write_stats": fastpath.stats.as_dict(),
                      "fanout_loop": getattr(daemon.hub.writer, "loop", None)})
            elif command == "profile-start":
                import cProfile

                profiler[:] = [cProfile.Profile()]
                profiler[0].enable()
            elif command == "profile-stop" and profiler:
                profiler[0].disable()
                profiler[0].dump_stats(value)
                emit({"event": "profile", "path": value})
            elif command == "quit":
                shutdown()

        def connectionLost(self, reason=None) -> None:
            shutdown()

    stopping: list = []

    def shutdown() -> None:
        if stopping:
            return
        stopping.append(True)
        for session in list(daemon.core.connections):
            session.sink.dropConnection(abort=True)
        reactor.callLater(0.2, reactor.stop)

    def started() -> None:
        daemon.startService()
        listener = daemon.listeners[0]
        for candidate in daemon.listeners:
            if candidate.description.startswith("ssl" if args.tls_key else "tcp"):
                listener = candidate
        listener.ready.addCallback(lambda port: emit({"event": "ready", "port": port.getHost().port,
                                                      "pid": os.getpid()}))
        stdio.StandardIO(Control())

    reactor.callWhenRunning(started)
    reactor.run()
    return 0


# --------------------------------------------------------------------------

def configure_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The bench's options, on `python -m dashd.bench` and on `dashd bench`."""
    commands = parser.add_subparsers(dest="bench_command")

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--quick", action="store_true", help="a short run (under 3 minutes)")
        p.add_argument("--repeats", type=int, default=None, help="repeat every scenario this many times")
        p.add_argument("--sessions", default=None,
                       help="comma-separated session names (1k,5k,10k-idle,1k-deflate,1k-tls)")
        p.add_argument("--servers", default=DEFAULT_SERVERS,
                       help="dashd, ws, floor (bench/floor.py), dashd-py (flat loop in Python), dashd-nginx (TLS "
                            "sessions: nginx terminates TLS), dashd-stock, dashd-2w (default dashd,ws,floor, plus "
                            "dashd-nginx when nginx is installed)")
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
    serve_parser.add_argument("--reuse-port", action="store_true",
                              help="listen with SO_REUSEPORT (the multi-process experiment: start several)")

    loop_parser = commands.add_parser("loop", help="the flat broadcast loop's CPU per delivery against the floor's")
    loop_parser.add_argument("--clients", type=int, default=1000)
    loop_parser.add_argument("--rounds", type=int, default=200)

    collector_parser = commands.add_parser("collector", help="CPU of the collectors (all, at default cadences)")
    collector_parser.add_argument("--seconds", type=float, default=60.0)
    collector_parser.add_argument("--interval", type=float, default=1.0)
    collector_parser.add_argument("--spawn", type=int, default=0,
                                  help="start this many idle processes first (to measure ~300 processes)")
    collector_parser.add_argument("--only-host", action="store_true",
                                  help="only the seed's psutil host collector (what `run` measures)")
    from dashd.store import bench_store  # the store benchmark lives with the store

    bench_store.configure(commands)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    if args.bench_command == "serve":
        return serve(args)
    if args.bench_command == "collector":
        return collector_cost(args)
    if args.bench_command == "store":
        from dashd.store import bench_store

        return bench_store.main(args)
    if args.bench_command == "loop":
        return fanout_loop_cost(args)
    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashd.bench", description=__doc__.split("\n\n")[0])
    return dispatch(configure_parser(parser).parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
