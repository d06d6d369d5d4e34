"""The collector: counter deltas become rates (none on the first reading,
a reset is left out), samples carry gauges, rates and the connection count,
and the service publishes one sample per interval on the bus, surviving a
failing read. Time is a task.Clock; psutil is only touched by the one test
that checks the real reader's output."""

from __future__ import annotations

import itertools

import pytest
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from dashd.collect.collector import (
    BASE_CATALOGUE,
    RATE_OF_COUNTER,
    CollectorService,
    HostReading,
    MetricsCollector,
    PsutilReader,
    RateCalculator,
    Sample,
    build_catalogue,
)
from dashd.stream.bus import METRICS_TOPIC, InMemoryBus

RATE_METRICS = set(RATE_OF_COUNTER) | {"network_traffic"}


def reading(
    at: float, recv: float = 0, sent: float = 0, read: float = 0, write: float = 0, **gauges: float
) -> HostReading:
    return HostReading(
        gauges=gauges,
        counters={"net_bytes_recv": recv, "net_bytes_sent": sent, "disk_read_bytes": read, "disk_write_bytes": write},
        monotonic=at,
    )


class FakeHostReader:
    """Returns the readings it was given, one per read(); a reading that is
    an exception is raised instead."""

    def __init__(self, readings) -> None:
        self._readings = iter(readings)
        self.reads = 0

    def read(self) -> HostReading:
        self.reads += 1
        item = next(self._readings)
        if isinstance(item, Exception):
            raise item
        return item


def counting_readings(step: float = 1.0):
    """Endless readings: cpu_usage counts up, 1000 B/s down and 500 B/s up."""
    for n in itertools.count():
        yield reading(n * step, recv=1000 * n * step, sent=500 * n * step, cpu_usage=float(n))


# ----- catalogue


def test_catalogue_puts_one_entry_per_core_after_cpu_usage():
    names = [info.name for info in build_catalogue(3)]
    assert names[:4] == ["cpu_usage", "cpu_core_0", "cpu_core_1", "cpu_core_2"]
    assert names[4:] == [info.name for info in BASE_CATALOGUE[1:]]


def test_catalogue_covers_the_metrics_the_issue_lists():
    names = {info.name for info in build_catalogue(1)}
    assert {
        "cpu_usage",
        "memory_usage",
        "network_traffic",
        "active_connections",
        "cpu_core_0",
        "load_1",
        "load_5",
        "load_15",
        "swap_usage",
        "disk_usage",
        "disk_read",
        "disk_write",
        "network_rx",
        "network_tx",
        "process_count",
        "uptime",
    } == names


# ----- rates


def test_first_reading_has_no_rates():
    assert RateCalculator().rates(reading(0.0, recv=100, sent=100)) == {}


def test_rates_are_counter_deltas_per_second():
    rates = RateCalculator()
    rates.rates(reading(10.0, recv=1000, sent=2000, read=0, write=100))
    assert rates.rates(reading(12.0, recv=3000, sent=2500, read=4096, write=100)) == {
        "network_rx": 1000.0,
        "network_tx": 250.0,
        "network_traffic": 1250.0,
        "disk_read": 2048.0,
        "disk_write": 0.0,
    }


def test_a_counter_that_goes_backwards_is_left_out_for_one_sample():
    rates = RateCalculator()
    rates.rates(reading(0.0, recv=5000, sent=5000, read=10, write=10))
    # The receive counter wrapped / the interface was reset.
    after_reset = rates.rates(reading(1.0, recv=100, sent=5600, read=20, write=30))
    assert after_reset == {"network_tx": 600.0, "disk_read": 10.0, "disk_write": 20.0}
    # The next delta is measured from the reset value again.
    assert rates.rates(reading(2.0, recv=400, sent=5700, read=20, write=30))["network_rx"] == 300.0


def test_no_elapsed_time_gives_no_rates_rather_than_a_division_by_zero():
    rates = RateCalculator()
    rates.rates(reading(5.0, recv=0))
    assert rates.rates(reading(5.0, recv=100)) == {}


def test_a_counter_missing_from_one_reading_leaves_only_its_rate_out():
    rates = RateCalculator()
    rates.rates(HostReading(gauges={}, counters={"disk_read_bytes": 0}, monotonic=0.0))
    assert rates.rates(
        HostReading(gauges={}, counters={"disk_read_bytes": 100, "net_bytes_recv": 5}, monotonic=1.0)
    ) == {"disk_read": 100.0}


# ----- MetricsCollector


def test_sample_combines_gauges_rates_and_the_connection_count():
    reader = FakeHostReader(
        [
            reading(0.0, recv=0, sent=0, cpu_usage=10.0),
            reading(1.0, recv=800, sent=200, read=50, write=70, cpu_usage=12.5, memory_usage=40.0),
        ]
    )
    collector = MetricsCollector(reader, "web-1", connection_count=lambda: 7, wall_clock_ms=lambda: 1_764_151_200_000)
    collector.prime()
    assert collector.sample() == Sample(
        host="web-1",
        timestamp_ms=1_764_151_200_000,
        metrics={
            "cpu_usage": 12.5,
            "memory_usage": 40.0,
            "network_rx": 800.0,
            "network_tx": 200.0,
            "network_traffic": 1000.0,
            "disk_read": 50.0,
            "disk_write": 70.0,
            "active_connections": 7,
        },
    )


def test_unprimed_collector_sends_its_first_sample_without_rates():
    collector = MetricsCollector(
        FakeHostReader([reading(0.0, recv=10, cpu_usage=3.0)]), "h", lambda: 0, wall_clock_ms=lambda: 0
    )
    assert set(collector.sample().metrics) == {"cpu_usage", "active_connections"}


# ----- CollectorService on a fake clock


def start_service(reader, interval: float = 1.0):
    clock = Clock()
    bus = InMemoryBus()
    published: list[Sample] = []
    bus.subscribe(METRICS_TOPIC, lambda topic, sample: published.append(sample))
    service = CollectorService(
        MetricsCollector(reader, "h", lambda: 0, wall_clock_ms=lambda: int(clock.seconds() * 1000)),
        bus,
        clock,
        interval,
    )
    service.startService()
    return service, clock, published


def test_service_publishes_one_sample_per_interval():
    service, clock, published = start_service(FakeHostReader(counting_readings()), interval=2.0)
    assert published == []  # the first sample waits one interval (it needs a baseline for rates)
    clock.advance(1.9)
    assert published == []
    clock.advance(0.1)
    assert len(published) == 1
    for _ in range(4):
        clock.advance(2.0)
    assert [s.timestamp_ms for s in published] == [2000, 4000, 6000, 8000, 10000]
    assert service.last_tick == 10.0
    service.stopService()


def test_first_published_sample_has_rates_from_the_primed_baseline():
    _, clock, published = start_service(FakeHostReader(counting_readings()))
    clock.advance(1.0)
    assert published[0].metrics["network_traffic"] == 1500.0


def test_a_failing_read_is_logged_and_the_next_interval_still_samples():
    readings = [reading(0.0), reading(1.0, cpu_usage=1.0), RuntimeError("psutil exploded"), reading(3.0, cpu_usage=3.0)]
    with capturedLogs() as events:
        service, clock, published = start_service(FakeHostReader(readings))
        clock.advance(1.0)
        clock.advance(1.0)
        clock.advance(1.0)
    assert [s.metrics["cpu_usage"] for s in published] == [1.0, 3.0]
    failures = [e for e in events if e.get("log_failure") is not None]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)
    assert service.running
    service.stopService()


def test_set_interval_changes_the_period_from_now():
    service, clock, published = start_service(FakeHostReader(counting_readings()), interval=1.0)
    clock.advance(1.0)
    service.set_interval(5.0)
    assert service.interval == 5.0
    clock.advance(4.9)
    assert len(published) == 1
    clock.advance(0.1)
    clock.advance(5.0)
    assert [s.timestamp_ms for s in published] == [1000, 6000, 11000]
    service.stopService()


def test_stopped_service_publishes_nothing_more():
    service, clock, published = start_service(FakeHostReader(counting_readings()))
    clock.advance(1.0)
    service.stopService()
    clock.advance(10.0)
    assert len(published) == 1
    assert clock.getDelayedCalls() == []


def test_set_interval_before_start_is_used_at_start():
    clock = Clock()
    bus = InMemoryBus()
    published = []
    bus.subscribe(METRICS_TOPIC, lambda topic, sample: published.append(sample))
    service = CollectorService(MetricsCollector(FakeHostReader(counting_readings()), "h", lambda: 0), bus, clock, 1.0)
    service.set_interval(3.0)
    service.startService()
    clock.advance(2.0)
    assert published == []
    clock.advance(1.0)
    assert len(published) == 1
    service.stopService()


# ----- the real reader


def test_psutil_reader_yields_every_catalogue_gauge_and_the_rate_counters():
    import psutil

    fake_monotonic = itertools.count(0.0, 1.0).__next__
    reader = PsutilReader("/", clock=fake_monotonic)
    first = reader.read()
    catalogue = {info.name for info in build_catalogue(psutil.cpu_count(logical=True) or 1)}
    gauges = catalogue - RATE_METRICS - {"active_connections"}
    assert gauges - set(first.gauges) == set()
    assert set(first.gauges) - catalogue == set()
    assert all(isinstance(value, (int, float)) for value in first.gauges.values())
    assert 0.0 <= first.gauges["cpu_usage"] <= 100.0
    collector = MetricsCollector(reader, "h", lambda: 0)
    collector.prime()
    sample = collector.sample()
    missing_counters = set(RATE_OF_COUNTER.values()) - set(first.counters)
    if missing_counters:
        pytest.skip(f"this machine does not expose {sorted(missing_counters)}")
    assert set(sample.metrics) == catalogue


# ----- the publishing schedule: late ticks coalesce, they are not skipped (issue 17)


class TurnClock(Clock):
    """A task.Clock whose advance() runs only the calls due when it starts,
    like one reactor turn: a callLater(0) made by a call runs on the next
    turn (task.Clock would run it in the same advance, forever if every
    tick is late)."""

    def advance(self, amount: float) -> None:
        self.rightNow += amount
        self._sortCalls()
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            if call in self.calls:
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)


def run_slow_ticks(make_loop, work_seconds: float, period: float, seconds: float) -> int:
    """How many ticks a loop runs in `seconds` of a clock when each tick (a
    sample and its fan-out) takes `work_seconds`."""
    clock = TurnClock()
    ticks = []

    def work() -> None:
        ticks.append(clock.seconds())
        clock.rightNow += work_seconds  # the fan-out took this long

    loop = make_loop(work, clock, period)
    while clock.seconds() < seconds:
        clock.advance(max(0.0, min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds()))
    loop.stop()
    return len([t for t in ticks if t < seconds])


def test_a_fan_out_longer_than_the_period_lowers_the_rate_only_to_what_it_allows():
    """100 Hz with 11 ms ticks: LoopingCall skips every second tick (~50 Hz);
    the schedule runs the late tick at once (~91 Hz) and counts the lost
    periods as coalesced."""
    from twisted.internet.task import LoopingCall

    from dashd.collect.schedule import PublishSchedule

    def looping_call(work, clock, period):
        loop = LoopingCall(work)
        loop.clock = clock
        loop.start(period, now=False)
        return loop

    schedules: list[PublishSchedule] = []

    def schedule(work, clock, period):
        s = PublishSchedule(work, clock, period)
        s.start(now=False)
        schedules.append(s)
        return s

    skipped = run_slow_ticks(looping_call, 0.011, 0.010, 1.0)
    coalescing = run_slow_ticks(schedule, 0.011, 0.010, 1.0)
    assert skipped <= 51
    assert 88 <= coalescing <= 91
    assert 8 <= schedules[0].coalesced <= 10
    assert schedules[0].ticks + schedules[0].coalesced in range(98, 102)


def test_the_schedule_is_on_time_when_the_work_fits_and_does_not_burst_after_a_stall():
    from dashd.collect.schedule import PublishSchedule

    clock = TurnClock()
    ran = []
    stall = [0.0]

    def work() -> None:
        ran.append(clock.seconds())
        clock.rightNow += stall[0]
        stall[0] = 0.0

    schedule = PublishSchedule(work, clock, 0.1)
    schedule.start()
    clock.pump([0.1] * 5)
    assert [round(t, 3) for t in ran] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert schedule.coalesced == 0
    stall[0] = 0.45  # one tick blocks the reactor for 4.5 periods
    clock.advance(0.1)
    assert round(ran[-1], 3) == 0.6 and round(clock.seconds(), 3) == 1.05
    clock.advance(0)  # the late tick runs at once, once
    assert len(ran) == 7 and round(ran[-1], 3) == 1.05
    clock.advance(0.1)
    assert len(ran) == 8 and round(ran[-1], 3) == 1.15  # re-anchored: no catch-up burst
    assert schedule.coalesced == 3  # 0.35 s over the deadline of 0.7 s: 3.5 periods
    schedule.stop()
    assert clock.getDelayedCalls() == []


def test_a_failing_tick_is_logged_and_the_schedule_goes_on():
    from dashd.collect.schedule import PublishSchedule

    clock = Clock()
    calls = []

    def work() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    schedule = PublishSchedule(work, clock, 1.0)
    with capturedLogs() as events:
        schedule.start()
        clock.pump([1.0, 1.0])
    assert len(calls) == 2 and schedule.running
    assert [e["log_failure"].check(RuntimeError) for e in events if e.get("log_failure")] == [RuntimeError]
    with pytest.raises(ValueError):
        PublishSchedule(work, clock, 0)
    schedule.stop()


def test_collector_service_reports_its_ticks_and_coalesced_periods():
    service, clock, published = start_service(FakeHostReader(counting_readings()), interval=1.0)
    clock.advance(1.0)
    clock.advance(1.0)
    assert service.ticks == (2, 0)
    service.stopService()


def test_a_read_off_the_reactor_publishes_when_it_returns_and_a_tick_meanwhile_is_skipped():
    """The psutil read runs in the runner (a thread in makeService); the
    sample keeps the tick's timestamp and rates are computed on return."""
    from twisted.internet.defer import Deferred

    clock = Clock()
    bus = InMemoryBus()
    published: list[Sample] = []
    bus.subscribe(METRICS_TOPIC, lambda topic, sample: published.append(sample))
    reads: list[Deferred] = []

    def runner(read):
        d = Deferred()
        reads.append(d)
        d.addCallback(lambda _: read())
        return d

    service = CollectorService(
        MetricsCollector(
            FakeHostReader(counting_readings()), "h", lambda: 0, wall_clock_ms=lambda: int(clock.seconds() * 1000)
        ),
        bus,
        clock,
        1.0,
        runner=runner,
    )
    service.startService()
    clock.advance(1.0)
    clock.advance(1.0)  # the first read has not returned: this tick is skipped
    assert len(reads) == 1 and service.skipped == 1 and published == []
    reads[0].callback(None)
    assert [s.timestamp_ms for s in published] == [1000] and "cpu_usage" in published[0].metrics
    clock.advance(1.0)
    reads[1].callback(None)
    assert [s.timestamp_ms for s in published] == [1000, 3000]
    service.stopService()
