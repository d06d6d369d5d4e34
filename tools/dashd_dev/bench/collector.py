"""`dashd bench collector`: the CPU the real collectors cost."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from typing import Any

from dashd_dev.bench.procs import Child, emit


def measure_collector(python: str, seconds: float) -> dict:
    child = Child("collector", [python, "-m", "dashd_dev.bench", "collector", "--seconds", str(seconds), "--only-host"])
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
    from twisted.internet.threads import deferToThreadPool

    from dashd.collect.assembly import build_sources
    from dashd.collect.collector import CollectorService, MetricsCollector, PsutilReader
    from dashd.collect.families import FAMILY_BY_NAME
    from dashd.collect.series_feed import SeriesFolding
    from dashd.collect.sources import PROCESSES_TOPIC, SourceScheduler
    from dashd.settings import load_settings
    from dashd.store.processes import Keyframe, SnapshotEncoder
    from dashd.stream.bus import METRICS_TOPIC, InMemoryBus
    from dashd.stream.processes import ProcessStream, ProcessView, TopicRouter
    from dashd.stream.streams import METRICS_UPDATE, StreamMessage, encode
    from dashd.timefmt import now_ms

    durations: list[float] = []
    bus = InMemoryBus()
    # As makeService wires them: the psutil read in a thread, the
    # collectors' readings folded into the host samples.
    feed = SeriesFolding(bus, "bench")
    service = CollectorService(
        MetricsCollector(PsutilReader("/"), "bench", lambda: 0),
        feed,
        reactor,
        args.interval,
        on_sample_duration=durations.append,
        threaded=True,
    )
    snapshot_sizes: list[int] = []
    encoder = SnapshotEncoder(group_span_ms=300_000)  # the look-back's keyframe + deltas, as stored
    keyframe: list = [None]

    def measure_snapshot(snapshot: Any) -> None:
        data, body, is_keyframe = encoder.encode(snapshot, keyframe[0])
        if is_keyframe:
            keyframe[0] = Keyframe(0, snapshot.timestamp_ms, body)
        snapshot_sizes.append(len(data))
        result.update(processes_on_host=snapshot.table.total)

    class SizeProbe:
        """The look-back's place: sizes measured in a later reactor turn,
        so the tick's reactor time is what the daemon's stream costs."""

        def offer(self, snapshot: Any) -> None:
            reactor.callLater(0, measure_snapshot, snapshot)

    # The processes stream as the daemon runs it, with three subscribed
    # views (a viewer and an operator by CPU, a viewer by memory).
    stream = ProcessStream(SizeProbe(), runner=lambda work: deferToThreadPool(reactor, reactor.getThreadPool(), work))
    for owner, (sort, sensitive) in enumerate((("cpu", False), ("cpu", True), ("memory", False))):
        view = ProcessView(sort, 50, "bench", sensitive, True)
        stream.subscribe(owner, lambda view=view: view, lambda frame: None)
    scheduler = None
    if not args.only_host:
        # Default cadences, as `collectors = all` runs them.
        sources, intervals = build_sources(load_settings({"collectors": "all"}, environ={}))
        scheduler = SourceScheduler(
            sources, intervals, TopicRouter(feed, {PROCESSES_TOPIC: stream}), reactor, "bench", now_ms
        )
    names: set[str] = set()
    update_sizes: list[int] = []

    def on_sample(topic: str, sample: Any) -> None:
        names.update(name for name in sample.metrics if "{" in name or name in FAMILY_BY_NAME)
        # The metrics_update a `*` subscriber gets for this sample.
        update_sizes.append(
            len(encode(StreamMessage(1, METRICS_UPDATE, sample.timestamp_ms, sample.host, sample.metrics).envelope()))
        )

    bus.subscribe(METRICS_TOPIC, on_sample)
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
        event = {
            "event": "collector",
            "seconds": round(elapsed, 1),
            "samples": len(durations),
            "cpu_pct": 100.0 * used / elapsed,
            "mean_sample_ms": 1000.0 * statistics.mean(durations) if durations else None,
            "max_sample_ms": 1000.0 * max(durations) if durations else None,
            "host_max_block_ms": 1000.0 * service.max_block_seconds,
            "host_max_block_cpu_ms": 1000.0 * service.max_block_cpu_seconds,
            "update_bytes_mean": statistics.mean(update_sizes) if update_sizes else 0,
            "update_bytes_max": max(update_sizes) if update_sizes else 0,
        }
        if scheduler is not None:
            scheduler.stopService()
            event.update(collectors_report(scheduler, names, service.max_block_seconds))
            event["snapshot_bytes"] = statistics.mean(snapshot_sizes) if snapshot_sizes else 0
            event["processes_on_host"] = result.get("processes_on_host", 0)
        emit(event)
        if scheduler is not None:
            for name, stats in event["per_collector"].items():
                print(
                    f"  {name:12s} reads {stats['reads']:4d}  read {stats['mean_read_ms']:7.2f} ms "
                    f"(cpu {stats['mean_read_cpu_ms']:6.2f} ms, max {stats['max_read_ms']:7.2f} ms)  "
                    f"reactor max {stats['max_block_ms']:.3f} ms (cpu {stats['max_block_cpu_ms']:.3f})  series {stats['series']}",
                    flush=True,
                )
            print(
                f"  process table of {event['processes_on_host']} processes: "
                f"{event['process_snapshot_cpu_ms']:.2f} ms of CPU per snapshot "
                f"({event['process_snapshot_ms']:.2f} ms wall in its thread on this machine's load); "
                f"look-back encoding {event['snapshot_bytes']:.0f} bytes per snapshot",
                flush=True,
            )
            print(
                f"  host sample: psutil read {event['mean_sample_ms']:.2f} ms mean, {event['max_sample_ms']:.2f} ms max "
                f"(in a thread); reactor max {event['host_max_block_ms']:.3f} ms "
                f"(cpu {event['host_max_block_cpu_ms']:.3f}); metrics_update for '*': "
                f"{event['update_bytes_mean']:.0f} bytes mean, {event['update_bytes_max']} max",
                flush=True,
            )
            print(
                f"RESULT collector_cpu_percent={event['cpu_pct']:.2f} max_tick_block_ms={event['max_tick_block_ms']:.2f} "
                f"process_snapshot_ms={event['process_snapshot_cpu_ms']:.2f} series={event['series']}",
                flush=True,
            )
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
        per[name] = {
            "reads": stats.reads,
            "failures": stats.failures,
            "skipped": stats.skipped,
            "series": stats.series,
            "mean_read_ms": 1000.0 * stats.mean_read_seconds,
            "mean_read_cpu_ms": 1000.0 * stats.mean_read_cpu_seconds,
            "max_read_ms": 1000.0 * stats.max_read_seconds,
            "max_block_ms": 1000.0 * stats.max_block_seconds,
            "max_block_cpu_ms": 1000.0 * stats.max_block_cpu_seconds,
        }
    processes = per.get("processes", {})
    return {
        "per_collector": per,
        "max_tick_block_ms": 1000.0 * max(scheduler.max_block_seconds, host_block_seconds),
        "max_source_block_ms": 1000.0 * scheduler.max_block_seconds,
        "process_snapshot_ms": processes.get("mean_read_ms", 0.0),
        "process_snapshot_cpu_ms": processes.get("mean_read_cpu_ms", 0.0),
        "series": len(names),
    }
