"""Source of samples: reads the host with psutil every interval and publishes
one Sample per tick on the bus (the original specification's MetricsCollector).

Sampling is split in two so the maths can be tested without psutil: a
HostReader returns raw counters and gauges, and RateCalculator turns counters
into per-second rates (first sample has none; a counter that goes backwards
was reset, and its rate is left out rather than reported as a spike).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, cast

import psutil
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from dashd.collect.schedule import PublishSchedule
from dashd.stream.bus import METRICS_TOPIC, Bus
from dashd.timefmt import now_ms


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str
    description: str
    kind: str = "gauge"  # or "rate": a per-second rate derived from a counter

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "description": self.description, "kind": self.kind}


BASE_CATALOGUE: tuple[MetricInfo, ...] = (
    MetricInfo("cpu_usage", "%", "CPU busy over the last interval, all cores"),
    MetricInfo("memory_usage", "%", "memory in use (total minus available)"),
    MetricInfo("network_traffic", "B/s", "network bytes received plus sent per second", "rate"),
    MetricInfo("active_connections", "count", "live authenticated WebSocket clients of this daemon"),
    MetricInfo("swap_usage", "%", "swap in use"),
    MetricInfo("disk_usage", "%", "space used on the watched filesystem"),
    MetricInfo("disk_read", "B/s", "bytes read per second, all disks", "rate"),
    MetricInfo("disk_write", "B/s", "bytes written per second, all disks", "rate"),
    MetricInfo("network_rx", "B/s", "network bytes received per second", "rate"),
    MetricInfo("network_tx", "B/s", "network bytes sent per second", "rate"),
    MetricInfo("load_1", "", "load average over 1 minute"),
    MetricInfo("load_5", "", "load average over 5 minutes"),
    MetricInfo("load_15", "", "load average over 15 minutes"),
    MetricInfo("process_count", "count", "processes on the host"),
    MetricInfo("uptime", "s", "seconds since the host booted"),
)


def describe_metric(name: str) -> tuple[str, str]:
    """(unit, kind) of a catalogue metric, for the store's series registry;
    a name outside the catalogue (an agent's extra metric) is a gauge."""
    info = _BY_NAME.get(name)
    if info is None and name.startswith("cpu_core_"):
        return "%", "gauge"
    return (info.unit, info.kind) if info is not None else ("", "gauge")


_BY_NAME = {info.name: info for info in BASE_CATALOGUE}


def build_catalogue(cpu_count: int) -> tuple[MetricInfo, ...]:
    cores = tuple(MetricInfo(f"cpu_core_{i}", "%", f"CPU busy, core {i}") for i in range(cpu_count))
    return BASE_CATALOGUE[:1] + cores + BASE_CATALOGUE[1:]


@dataclass(frozen=True)
class Sample:
    """One reading of one host. `timestamp_ms` is Unix milliseconds."""

    host: str
    timestamp_ms: int
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class HostReading:
    """Raw values at one instant: gauges are used as they are, counters
    (monotonic byte totals) become rates."""

    gauges: Mapping[str, float]
    counters: Mapping[str, float]
    monotonic: float


class HostReader(Protocol):
    def read(self) -> HostReading: ...


# Which counter feeds which rate metric.
RATE_OF_COUNTER = {
    "network_rx": "net_bytes_recv",
    "network_tx": "net_bytes_sent",
    "disk_read": "disk_read_bytes",
    "disk_write": "disk_write_bytes",
}


class PsutilReader:
    """Reads this host through psutil. Each read takes about a millisecond
    (see docs/benchmarks.md); nothing here sleeps or blocks on I/O other than
    /proc."""

    def __init__(self, disk_path: str = "/", clock: Callable[[], float] = time.monotonic) -> None:
        self._disk_path = disk_path
        self._clock = clock
        self._boot_time = psutil.boot_time()
        # cpu_percent(interval=None) compares with the previous call: prime it.
        psutil.cpu_percent(interval=None, percpu=True)
        self._cpu_times = psutil.cpu_times()

    def read(self) -> HostReading:
        per_core = psutil.cpu_percent(interval=None, percpu=True)
        gauges: dict[str, float] = {"cpu_usage": self._total_cpu_percent()}
        for index, value in enumerate(per_core):
            gauges[f"cpu_core_{index}"] = round(value, 2)
        memory = psutil.virtual_memory()
        gauges["memory_usage"] = round(memory.percent, 2)
        gauges["swap_usage"] = round(psutil.swap_memory().percent, 2)
        try:
            gauges["disk_usage"] = round(psutil.disk_usage(self._disk_path).percent, 2)
        except OSError:
            pass
        load_1, load_5, load_15 = os.getloadavg()
        gauges.update(load_1=round(load_1, 2), load_5=round(load_5, 2), load_15=round(load_15, 2))
        gauges["process_count"] = len(psutil.pids())
        gauges["uptime"] = round(time.time() - self._boot_time, 1)
        counters: dict[str, float] = {}
        net = _network_totals()
        if net is not None:
            counters["net_bytes_recv"], counters["net_bytes_sent"] = net
        disk = psutil.disk_io_counters()
        if disk is not None:
            counters["disk_read_bytes"] = disk.read_bytes
            counters["disk_write_bytes"] = disk.write_bytes
        return HostReading(gauges=gauges, counters=counters, monotonic=self._clock())

    def _total_cpu_percent(self) -> float:
        # psutil.cpu_percent() keeps one shared "last" snapshot per process,
        # which the per-core call already consumed; compute the total from our
        # own snapshot so the two calls do not race each other.
        current = psutil.cpu_times()
        previous, self._cpu_times = self._cpu_times, current
        busy = _busy(current) - _busy(previous)
        total = sum(current) - sum(previous)
        if total <= 0:
            return 0.0
        return round(max(0.0, min(100.0, 100.0 * busy / total)), 2)


def _busy(times: Any) -> float:
    """Busy CPU seconds of a psutil cpu_times() tuple (its fields differ by platform)."""
    idle = times.idle + getattr(times, "iowait", 0.0)
    return float(sum(times) - idle)


def _network_totals() -> tuple[float, float] | None:
    counters = psutil.net_io_counters(pernic=True)
    if not counters:
        return None
    recv = sum(c.bytes_recv for name, c in counters.items() if name != "lo")
    sent = sum(c.bytes_sent for name, c in counters.items() if name != "lo")
    return recv, sent


@dataclass
class RateCalculator:
    """Turns successive counter readings into per-second rates."""

    _previous: HostReading | None = field(default=None)

    def prime(self, reading: HostReading) -> None:
        self._previous = reading

    def rates(self, reading: HostReading) -> dict[str, float]:
        previous, self._previous = self._previous, reading
        if previous is None:
            return {}
        elapsed = reading.monotonic - previous.monotonic
        if elapsed <= 0:
            return {}
        rates: dict[str, float] = {}
        for metric, counter in RATE_OF_COUNTER.items():
            if counter in reading.counters and counter in previous.counters:
                delta = reading.counters[counter] - previous.counters[counter]
                if delta >= 0:  # a negative delta is a reset (interface or driver restarted)
                    rates[metric] = round(delta / elapsed, 1)
        if "network_rx" in rates and "network_tx" in rates:
            rates["network_traffic"] = round(rates["network_rx"] + rates["network_tx"], 1)
        return rates


class MetricsCollector:
    """Builds a Sample from a HostReader: gauges, counter rates and the
    daemon's own connection count."""

    def __init__(
        self,
        reader: HostReader,
        host: str,
        connection_count: Callable[[], int],
        wall_clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        self._reader = reader
        self._host = host
        self._connection_count = connection_count
        self._wall_clock_ms = wall_clock_ms
        self._rates = RateCalculator()

    def prime(self) -> None:
        """Take the baseline reading, so the first published sample has rates."""
        self._rates.prime(self._reader.read())

    def sample(self) -> Sample:
        return self.sample_from(self._reader.read(), self._wall_clock_ms())

    def read(self) -> HostReading:
        """The slow part (psutil), safe to run in a worker thread."""
        return self._reader.read()

    def sample_from(self, reading: HostReading, timestamp_ms: int) -> Sample:
        """The Sample of a reading taken at `timestamp_ms` (rates: on the
        reactor thread, one reading after the other)."""
        metrics = dict(reading.gauges)
        metrics.update(self._rates.rates(reading))
        metrics["active_connections"] = self._connection_count()
        return Sample(host=self._host, timestamp_ms=timestamp_ms, metrics=metrics)

    def now_ms(self) -> int:
        return self._wall_clock_ms()


TICK_SLACK = 1.0  # seconds: a tick that runs a little late is still a tick


class CollectorService(Service):
    """Drives a MetricsCollector from a PublishSchedule on the injected clock
    and publishes each sample on the metrics topic. When a tick (sample and
    the fan-out it triggers) runs longer than the interval, the next one runs
    at once and the lost periods are coalesced into it, never skipped
    (dashd.collect.schedule).

    `threaded=True` (makeService, the bench) reads psutil in a one-thread
    pool of its own, started with the service (starting a thread inside a
    tick held the reactor ~15 ms under load), and only the rates and the
    publish run on the reactor thread: the read held the reactor up to
    ~23 ms on a loaded machine. A tick that finds the previous read still
    running is skipped and counted. A `runner` (tests) replaces the pool.
    Neither (tests, tools with a synthetic sampler): the whole sample is
    taken in the tick, as the sampler's `sample()`."""

    log = Logger()

    def __init__(
        self,
        collector: MetricsCollector,
        bus: Bus,
        clock: IReactorTime,
        interval: float,
        *,
        on_sample_duration: Callable[[float], None] = lambda seconds: None,
        runner: Callable[[Callable[[], Any]], Deferred[Any]] | None = None,
        threaded: bool = False,
    ) -> None:
        # Public so tools can feed the real tree other samples (dashd bench).
        self.sampler = collector
        self._bus = bus
        self._clock = clock
        self._runner = runner
        self._threaded = threaded and runner is None
        self._pool: ThreadPool | None = None
        self._reading = False
        self.interval = interval
        self.schedule = PublishSchedule(self._scheduled_tick, clock, interval)
        self.last_tick: float | None = None  # clock time of the last successful sample
        self.last_duration: float = 0.0  # seconds the last sample took
        self.started_at: float | None = None  # clock time of startService
        self.skipped = 0  # ticks that found the previous threaded read still running
        self.max_block_seconds = 0.0  # the longest a tick (or its publish) held the reactor thread
        self.max_block_cpu_seconds = 0.0  # the most reactor-thread CPU one tick or publish used
        self._on_sample_duration = on_sample_duration

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self.started_at = self._clock.seconds()
        if self._threaded:
            pool = self._pool = ThreadPool(minthreads=1, maxthreads=1, name="dashd-host-sample")
            pool.start()
            reactor = cast(IReactorFromThreads, self._clock)  # threaded: the clock is the reactor
            self._runner = lambda read: deferToThreadPool(reactor, pool, read)
        self.sampler.prime()
        self._start_loop(now=False)

    def stopService(self) -> Deferred[None] | None:
        self.schedule.stop()
        if self._pool is not None:
            pool, self._pool, self._runner = self._pool, None, None
            pool.stop()
        return super().stopService()  # type: ignore[no-untyped-call,no-any-return]  # Twisted's Service is untyped

    def sample_with(self, sampler: Any) -> None:
        """Before startService: take each sample from `sampler.sample()` in
        the tick itself (tools feeding the real tree synthetic samples)."""
        self.sampler = sampler
        self._threaded = False
        self._runner = None

    def set_interval(self, interval: float) -> None:
        """Change the collection period at run time."""
        self.interval = interval
        if self.schedule.running:
            self._start_loop(now=False)

    def _start_loop(self, now: bool) -> None:
        self.schedule.period = self.interval
        self.schedule.start(now=now)

    def is_ticking(self, now: float) -> bool:
        """Sampled within two intervals and a second's slack, or started that
        recently: the one rule for /api/ready and the systemd watchdog."""
        since = self.last_tick if self.last_tick is not None else self.started_at
        return since is not None and now - since <= 2 * self.interval + TICK_SLACK

    @property
    def ticks(self) -> tuple[int, int]:
        """(ticks run, periods coalesced into a later tick), for /metrics and the bench."""
        return self.schedule.ticks, self.schedule.coalesced

    def _scheduled_tick(self) -> None:
        self.tick()

    def tick(self) -> Deferred[None] | None:
        """Take and publish one sample; with a runner, the Deferred of the
        threaded read and its publish (None when skipped)."""
        if self._runner is None:
            self._sample_here()
            return None
        if self._reading:
            self.skipped += 1
            return None
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            self._reading = True
            timestamp_ms = self.sampler.now_ms()
            d = self._runner(lambda: _timed_read(self.sampler.read))
            d.addCallbacks(self._publish_reading, self._read_failed, callbackArgs=(timestamp_ms,))
            d.addErrback(lambda failure: self.log.failure("publishing a sample failed", failure))
            return d
        except Exception:
            self._reading = False
            self.log.failure("starting a host read failed; will retry next interval")
            return None
        finally:
            self._blocked(time.perf_counter() - started, time.thread_time() - cpu_started)

    def _sample_here(self) -> None:
        # Guarded: an exception escaping a LoopingCall stops it for good.
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            sample = self.sampler.sample()
        except Exception:
            self.log.failure("collecting a sample failed; will retry next interval")
            return
        self.last_duration = time.perf_counter() - started
        self._published(sample)
        self._blocked(time.perf_counter() - started, time.thread_time() - cpu_started)

    def _publish_reading(self, result: tuple[HostReading, float], timestamp_ms: int) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        self._reading = False
        reading, self.last_duration = result
        try:
            if self.running:
                self._published(self.sampler.sample_from(reading, timestamp_ms))
        finally:
            self._blocked(time.perf_counter() - started, time.thread_time() - cpu_started)

    def _read_failed(self, failure: Failure) -> None:
        self._reading = False
        self.log.failure("collecting a sample failed; will retry next interval", failure)

    def _published(self, sample: Sample) -> None:
        self._on_sample_duration(self.last_duration)
        self.last_tick = self._clock.seconds()
        self._bus.publish(METRICS_TOPIC, sample).addErrback(
            lambda failure: self.log.failure("publishing a sample failed", failure)
        )

    def _blocked(self, seconds: float, cpu_seconds: float) -> None:
        self.max_block_seconds = max(self.max_block_seconds, seconds)
        self.max_block_cpu_seconds = max(self.max_block_cpu_seconds, cpu_seconds)


def _timed_read(read: Callable[[], HostReading]) -> tuple[HostReading, float]:
    started = time.perf_counter()
    reading = read()
    return reading, time.perf_counter() - started
