"""The collectors of issue 19 (file systems, disks, interfaces, system,
sensors, cgroups, processes) and the one service that runs them.

Each collector is a `Source`: a name, a cadence and a `read()` that does the
slow part (reading /proc and /sys, psutil) and returns what it saw. The
`SourceScheduler` calls every source on its own LoopingCall, runs `read()` in
a small dedicated thread pool so the reactor thread only starts the read and
publishes its result, and measures both: how long each read took (in its
thread) and how long each tick held the reactor (the budget is 5 ms).

What goes on the bus (the one seam to the rest of dashd):
- `SERIES_TOPIC`: a `SeriesSample` per read of a series source, its values
  keyed by canonical series name (dashd.collect.series_names);
- `PROCESSES_TOPIC`: a `ProcessSnapshot` per read of the process table
  (the daemon routes this topic to its processes stream, not the shared
  bus: dashd.stream.processes.TopicRouter).

Counters become rates in `CounterRates`, which handles 32-bit wrap-around
and resets (see its docstring).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

SERIES_TOPIC = "series"
PROCESSES_TOPIC = "processes"

WRAP_32 = 2**32


@dataclass(frozen=True)
class SeriesSample:
    """One read of one source: `values` maps canonical series names
    (`disk_used_percent{mount="/"}`) to numbers. `timestamp_ms` is Unix ms."""

    host: str
    timestamp_ms: int
    source: str
    values: Mapping[str, float]


class Source(Protocol):
    """A collector. `read()` runs in a worker thread, never two at once for
    one source. A source on SERIES_TOPIC returns a Mapping of series to
    values; a source on another topic returns anything and also has
    `envelope(host, timestamp_ms, value)`, the message to publish."""

    name: str
    topic: str

    def read(self) -> Any: ...


class Publisher(Protocol):
    def publish(self, topic: str, message: Any) -> Deferred: ...


@dataclass
class CounterRates:
    """Per-second rates of monotonic counters, keyed by anything hashable.

    - first reading of a key: no rate (nothing to compare with);
    - a counter that went down by less than half of 2**32 from a value that
      fits in 32 bits wrapped around (32-bit kernels, some drivers): the
      delta is taken modulo 2**32;
    - any other decrease is a reset (a device or interface re-registered):
      no rate for that reading, and the new value is the next baseline;
    - a key that disappears is forgotten (an unplugged disk).
    """

    clock: Callable[[], float] = time.monotonic
    wrap32: bool = True  # False for 64-bit counters (cgroup CPU ns), where a decrease is always a reset
    _previous: dict = field(default_factory=dict)
    _at: float | None = None

    def rates(self, counters: Mapping[Any, float], now: float | None = None) -> dict:
        now = self.clock() if now is None else now
        previous, at = self._previous, self._at
        self._previous, self._at = dict(counters), now
        if at is None or now <= at:
            return {}
        elapsed = now - at
        out = {}
        for key, value in counters.items():
            before = previous.get(key)
            if before is None:
                continue
            delta = counter_delta(before, value) if self.wrap32 else (value - before if value >= before else None)
            if delta is not None:
                out[key] = delta / elapsed
        return out


def counter_delta(before: float, after: float) -> float | None:
    """How much a counter grew, allowing for a 32-bit wrap; None for a reset."""
    if after >= before:
        return after - before
    if before < WRAP_32 and after < WRAP_32:
        wrapped = after + WRAP_32 - before
        if wrapped < WRAP_32 // 2:
            return wrapped
    return None


@dataclass
class SourceStats:
    """What one source cost: reads in their thread, ticks on the reactor."""

    reads: int = 0
    failures: int = 0
    skipped: int = 0  # ticks that found the previous read still running
    series: int = 0  # series in the last read
    last_read_seconds: float = 0.0
    total_read_seconds: float = 0.0
    total_read_cpu_seconds: float = 0.0  # CPU of the reading thread: wall time minus waiting on a busy machine
    max_read_seconds: float = 0.0
    max_block_seconds: float = 0.0  # the longest the reactor thread was held by this source
    # The most reactor-thread CPU any one hold used: wall time above it is
    # the thread waiting (for a core on a busy machine, or for the GIL).
    max_block_cpu_seconds: float = 0.0

    @property
    def mean_read_seconds(self) -> float:
        return self.total_read_seconds / self.reads if self.reads else 0.0

    @property
    def mean_read_cpu_seconds(self) -> float:
        return self.total_read_cpu_seconds / self.reads if self.reads else 0.0


Runner = Callable[[Callable[[], Any]], Deferred]


class SourceScheduler(Service):
    """Runs each source every `intervals[name]` seconds on the injected clock,
    reads in `runner` (a dedicated thread pool by default) and publishes
    each result on the bus. Ticks are guarded: a failing read is logged and
    the next one still happens."""

    log = Logger()

    def __init__(
        self,
        sources: list[Source],
        intervals: Mapping[str, float],
        bus: Publisher,
        clock: IReactorTime,
        host: str,
        wall_clock_ms: Callable[[], int],
        runner: Runner | None = None,
        threads: int = 2,
        on_read: Callable[[str, float, float], None] = lambda name, read_seconds, block_seconds: None,
    ) -> None:
        self.sources = list(sources)
        self.intervals = dict(intervals)
        self._bus = bus
        self._clock = clock
        self._host = host
        self._wall_clock_ms = wall_clock_ms
        self._runner = runner
        self._threads = threads
        self._on_read = on_read  # (source name, read seconds, reactor seconds of start + publish)
        self._pool: ThreadPool | None = None
        self._loops: dict[str, LoopingCall] = {}
        self._busy: set[str] = set()
        self._started_block: dict[str, float] = {}  # reactor seconds of each source's current tick start
        self.stats: dict[str, SourceStats] = {source.name: SourceStats() for source in self.sources}

    @property
    def max_block_seconds(self) -> float:
        return max((s.max_block_seconds for s in self.stats.values()), default=0.0)

    def startService(self) -> None:
        super().startService()
        if self._runner is None:
            # Our own pool: a slow read (a hung network file system) cannot
            # starve the reactor's default pool, which adbapi uses.
            # minthreads = maxthreads: the threads start here, not in the
            # first tick (starting a thread held the reactor ~20 ms under load).
            self._pool = ThreadPool(minthreads=self._threads, maxthreads=self._threads, name="dashd-collect")
            self._pool.start()
            pool = self._pool
            self._runner = lambda f: deferToThreadPool(self._clock, pool, f)
        self.log.info(
            "collectors running: {collectors}",
            collectors=", ".join(f"{source.name} every {self.intervals[source.name]:g}s" for source in self.sources),
        )
        for source in self.sources:
            loop = LoopingCall(self.tick, source)
            loop.clock = self._clock
            self._loops[source.name] = loop
            # now=True: the first read primes counters; rates start on the second.
            loop.start(self.intervals[source.name], now=True).addErrback(
                lambda failure, name=source.name: self.log.failure("collector {name} stopped", failure, name=name)
            )

    def stopService(self):
        for loop in self._loops.values():
            if loop.running:
                loop.stop()
        self._loops.clear()
        if self._pool is not None:
            pool, self._pool, self._runner = self._pool, None, None
            pool.stop()
        return super().stopService()

    def tick(self, source: Source) -> None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        stats = self.stats[source.name]
        if source.name in self._busy:
            stats.skipped += 1
            self._blocked(stats, time.perf_counter() - started, time.thread_time() - cpu_started)
            return
        try:
            self._busy.add(source.name)
            timestamp_ms = self._wall_clock_ms()
            # Recorded before the runner: a synchronous runner (tests) calls
            # _read_done, which reports it, before this returns.
            self._started_block[source.name] = time.perf_counter() - started
            d = self._runner(lambda: _timed(source.read))  # type: ignore[misc]
            d.addCallbacks(
                self._read_done, self._read_failed, callbackArgs=(source, timestamp_ms), errbackArgs=(source,)
            )
            d.addErrback(lambda failure: self.log.failure("publishing {name} failed", failure, name=source.name))
        except Exception:
            self._busy.discard(source.name)
            self.log.failure("starting collector {name} failed; will retry next interval", name=source.name)
        finally:
            self._blocked(stats, time.perf_counter() - started, time.thread_time() - cpu_started)

    def _read_done(self, result: tuple[Any, float, float], source: Source, timestamp_ms: int) -> Deferred | None:
        started, cpu_started = time.perf_counter(), time.thread_time()
        self._busy.discard(source.name)
        value, seconds, cpu_seconds = result
        stats = self.stats[source.name]
        stats.reads += 1
        stats.total_read_cpu_seconds += cpu_seconds
        stats.last_read_seconds = seconds
        stats.total_read_seconds += seconds
        stats.max_read_seconds = max(stats.max_read_seconds, seconds)
        try:
            if not self.running:
                return None  # a read that finished after stopService: dashd is shutting down
            message = self._envelope(source, value, timestamp_ms)
            stats.series = len(value) if isinstance(value, Mapping) else len(getattr(value, "rows", ()))
            return maybeDeferred(self._bus.publish, source.topic, message)
        finally:
            blocked = time.perf_counter() - started
            self._blocked(stats, blocked, time.thread_time() - cpu_started)
            self._report(source.name, seconds, self._started_block.pop(source.name, 0.0) + blocked)

    def _report(self, name: str, read_seconds: float, block_seconds: float) -> None:
        try:
            self._on_read(name, read_seconds, block_seconds)
        except Exception:
            self.log.failure("recording collector {name}'s timing failed", name=name)

    def _read_failed(self, failure, source: Source) -> None:
        self._busy.discard(source.name)
        self.stats[source.name].failures += 1
        self.log.failure("collector {name} failed; will retry next interval", failure, name=source.name)

    def _envelope(self, source: Source, value: Any, timestamp_ms: int) -> Any:
        if source.topic == SERIES_TOPIC:
            return SeriesSample(self._host, timestamp_ms, source.name, dict(value))
        return source.envelope(self._host, timestamp_ms, value)  # type: ignore[attr-defined]

    @staticmethod
    def _blocked(stats: SourceStats, seconds: float, cpu_seconds: float) -> None:
        stats.max_block_seconds = max(stats.max_block_seconds, seconds)
        stats.max_block_cpu_seconds = max(stats.max_block_cpu_seconds, cpu_seconds)


def _timed(read: Callable[[], Any]) -> tuple[Any, float, float]:
    started, cpu_started = time.perf_counter(), time.thread_time()
    value = read()
    return value, time.perf_counter() - started, time.thread_time() - cpu_started
