"""The collectors' scheduler and counter maths: each source on its own
cadence, reads off the reactor thread, results published on the bus as
SeriesSample / ProcessSnapshot, a failing or slow read never stops the
loop, and counters become rates across 32-bit wrap-around and resets."""

from __future__ import annotations

import threading

import pytest_twisted
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from dashd.collect.processes import ProcessSnapshot, ProcessSource, ProcessTable
from dashd.collect.sources import (
    PROCESSES_TOPIC,
    SERIES_TOPIC,
    CounterRates,
    SeriesSample,
    SourceScheduler,
    counter_delta,
)
from dashd.stream.bus import InMemoryBus

# ----- counters


def test_first_reading_has_no_rate_and_the_second_has_one():
    rates = CounterRates()
    assert rates.rates({"a": 100}, now=10.0) == {}
    assert rates.rates({"a": 300}, now=12.0) == {"a": 100.0}


def test_a_32_bit_counter_that_wraps_gives_the_true_delta():
    rates = CounterRates()
    rates.rates({"rx": 2**32 - 1000}, now=0.0)
    assert rates.rates({"rx": 500}, now=1.0) == {"rx": 1500.0}


def test_a_counter_reset_gives_no_rate_and_becomes_the_new_baseline():
    rates = CounterRates()
    rates.rates({"rx": 10_000_000_000}, now=0.0)
    assert rates.rates({"rx": 20}, now=1.0) == {}
    assert rates.rates({"rx": 120}, now=2.0) == {"rx": 100.0}


def test_a_small_counter_that_drops_far_is_a_reset_not_a_wrap():
    # 3e9 -> 1e9 would be a 2.29e9 "wrap": more than half the range, so a reset.
    assert counter_delta(3_000_000_000, 1_000_000_000) is None
    assert counter_delta(2**32 - 10, 5) == 15


def test_64_bit_counters_never_wrap():
    rates = CounterRates(wrap32=False)
    rates.rates({"cpu_ns": 2**32 - 1000}, now=0.0)
    assert rates.rates({"cpu_ns": 500}, now=1.0) == {}


def test_keys_that_appear_later_start_their_own_rates():
    rates = CounterRates()
    rates.rates({"sda": 0}, now=0.0)
    assert rates.rates({"sda": 10, "sdb": 99}, now=1.0) == {"sda": 10.0}
    assert rates.rates({"sda": 20, "sdb": 109}, now=2.0) == {"sda": 10.0, "sdb": 10.0}


# ----- scheduler


class FakeSource:
    """Returns the given results one per read; an exception is raised."""

    topic = SERIES_TOPIC

    def __init__(self, name: str, results) -> None:
        self.name = name
        self._results = iter(results)
        self.reads = 0

    def read(self):
        self.reads += 1
        item = next(self._results)
        if isinstance(item, Exception):
            raise item
        return item


def run_now(function):
    return defer.maybeDeferred(function)


def scheduler_for(sources, intervals, bus, clock, runner=run_now):
    return SourceScheduler(sources, intervals, bus, clock, "h1", lambda: int(clock.seconds() * 1000), runner=runner)


def collect(bus, topic):
    received = []
    bus.subscribe(topic, lambda _topic, message: received.append(message))
    return received


def test_each_source_runs_on_its_own_cadence_and_publishes_series_samples():
    clock, bus = Clock(), InMemoryBus()
    received = collect(bus, SERIES_TOPIC)
    fast = FakeSource("disks", ({"d": float(n)} for n in range(100)))
    slow = FakeSource("filesystems", ({"f": float(n)} for n in range(100)))
    scheduler = scheduler_for([fast, slow], {"disks": 2.0, "filesystems": 10.0}, bus, clock)
    scheduler.startService()
    clock.pump([1.0] * 10)
    scheduler.stopService()
    assert (fast.reads, slow.reads) == (6, 2)  # at 0, 2, 4, 6, 8, 10 and at 0, 10
    assert received[0] == SeriesSample("h1", 0, "disks", {"d": 0.0})
    assert [m.source for m in received].count("filesystems") == 2
    assert scheduler.stats["disks"].reads == 6 and scheduler.stats["disks"].series == 1


def test_a_failing_read_is_logged_and_the_next_tick_still_reads():
    clock, bus = Clock(), InMemoryBus()
    received = collect(bus, SERIES_TOPIC)
    source = FakeSource("sensors", [RuntimeError("EIO"), {"t": 40.0}])
    scheduler = scheduler_for([source], {"sensors": 1.0}, bus, clock)
    with capturedLogs() as events:
        scheduler.startService()
        clock.advance(1.0)
    scheduler.stopService()
    assert [m.values for m in received] == [{"t": 40.0}]
    assert scheduler.stats["sensors"].failures == 1
    assert any(
        e.get("name") == "sensors" and "failed" in e.get("log_format", "") and e.get("log_failure") for e in events
    )


def test_a_tick_while_the_previous_read_still_runs_is_skipped_not_queued():
    clock, bus = Clock(), InMemoryBus()
    pending: list[defer.Deferred] = []

    def slow_runner(function):
        d = defer.Deferred()
        pending.append(d)
        d.addCallback(lambda _: function())
        return d

    source = FakeSource("cgroups", ({"c": float(n)} for n in range(10)))
    scheduler = scheduler_for([source], {"cgroups": 1.0}, bus, clock, runner=slow_runner)
    scheduler.startService()
    clock.advance(1.0)
    clock.advance(1.0)
    assert len(pending) == 1 and scheduler.stats["cgroups"].skipped == 2
    pending[0].callback(None)
    clock.advance(1.0)
    assert len(pending) == 2
    scheduler.stopService()


def test_the_process_source_is_published_as_a_process_snapshot():
    clock, bus = Clock(), InMemoryBus()
    received = collect(bus, PROCESSES_TOPIC)
    table = ProcessTable(rows=(), total=3)
    source = FakeSource("processes", [table])
    source.topic = PROCESSES_TOPIC
    source.envelope = ProcessSource.envelope.__get__(source)
    scheduler = scheduler_for([source], {"processes": 2.0}, bus, clock)
    scheduler.startService()
    scheduler.stopService()
    assert received == [ProcessSnapshot("h1", 0, table)]


@pytest_twisted.inlineCallbacks
def test_reads_run_in_the_dedicated_pool_not_on_the_reactor_thread():
    from twisted.internet import reactor

    bus = InMemoryBus()
    threads: list[str] = []
    done = defer.Deferred()

    class ThreadRecordingSource:
        name, topic = "system", SERIES_TOPIC

        def read(self):
            threads.append(threading.current_thread().name)
            return {"open_fds": 1.0}

    bus.subscribe(SERIES_TOPIC, lambda topic, message: done.called or done.callback(message))
    scheduler = SourceScheduler([ThreadRecordingSource()], {"system": 60.0}, bus, reactor, "h1", lambda: 0)
    scheduler.startService()
    try:
        message = yield done
    finally:
        scheduler.stopService()
    assert message.values == {"open_fds": 1.0}
    assert threads and threads[0] != threading.main_thread().name
    assert "dashd-collect" in threads[0]


def test_every_read_is_measured_and_reported_by_collector_name():
    clock, bus = Clock(), InMemoryBus()
    reports = []
    source = FakeSource("disks", ({"d": float(n)} for n in range(10)))
    scheduler = SourceScheduler(
        [source],
        {"disks": 1.0},
        bus,
        clock,
        "h1",
        lambda: 0,
        runner=run_now,
        on_read=lambda *report: reports.append(report),
    )
    scheduler.startService()
    clock.advance(1.0)
    scheduler.stopService()
    assert [name for name, _, _ in reports] == ["disks", "disks"]
    assert all(read >= 0 and block >= 0 for _, read, block in reports)
    assert scheduler.stats["disks"].max_block_seconds >= max(block for _, _, block in reports) / 2


def test_collector_timings_are_exported_to_prometheus():
    from dashd.ops.telemetry import Telemetry

    telemetry = Telemetry()
    telemetry.collector_read("processes", 0.012, 0.0003)
    text = telemetry.exposition().decode()
    assert 'dashd_collector_read_duration_seconds_count{collector="processes"} 1.0' in text
    assert 'dashd_collector_reactor_block_seconds_count{collector="processes"} 1.0' in text


def test_a_read_that_finishes_after_stop_is_not_published():
    clock, bus = Clock(), InMemoryBus()
    received = collect(bus, SERIES_TOPIC)
    pending: list[defer.Deferred] = []

    def slow_runner(function):
        d = defer.Deferred()
        pending.append(d)
        d.addCallback(lambda _: function())
        return d

    source = FakeSource("system", [{"open_fds": 1.0}])
    scheduler = scheduler_for([source], {"system": 1.0}, bus, clock, runner=slow_runner)
    scheduler.startService()
    scheduler.stopService()
    pending[0].callback(None)
    assert received == [] and source.reads == 1
