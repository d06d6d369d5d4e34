"""dashd's own health in Prometheus form (prometheus-client writes the text
format), served on a plain GET of /metrics. One registry per daemon, so tests
can run several in a process.

Two kinds of numbers: prometheus-client Counters and Histograms for events
off the hot path (auth failures, store writes, collection), and plain Python
integers read at scrape time for what happens once per frame (messages and
bytes by type) or lives in each client's stream (coalesced updates, slow
consumer closes): a dict increment costs a fraction of a labelled Counter's
lock and lookup, and a broadcast to thousands of clients pays it per client.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Fan-out to a few clients takes tens of microseconds, to thousands some milliseconds.
FANOUT_BUCKETS = (0.0001, 0.00025) + LATENCY_BUCKETS

# Inbound type labels: the client chooses the type, so anything not in this
# set is counted as "unknown" (a label's values must stay bounded).
INVALID = "invalid"  # not JSON, or not an object
UNKNOWN = "unknown"  # an object whose type dashd does not handle


class FrameCounts:
    """Messages and payload bytes per message type, as plain integers."""

    __slots__ = ("_by_kind",)

    def __init__(self) -> None:
        self._by_kind: dict[str | None, list[int]] = {}

    def add(self, kind: str | None, size: int, count: int = 1) -> None:
        entry = self._by_kind.get(kind)
        if entry is None:
            entry = self._by_kind[kind] = [0, 0]
        entry[0] += count
        entry[1] += size * count

    def totals(self) -> dict[str, tuple[int, int]]:
        """type -> (messages, bytes); a frame built without a type counts as unknown."""
        merged: dict[str, tuple[int, int]] = {}
        for kind, (count, size) in self._by_kind.items():
            before = merged.get(kind or UNKNOWN, (0, 0))
            merged[kind or UNKNOWN] = (before[0] + count, before[1] + size)
        return merged


class StreamTotals:
    """Sums of the per-client StreamStats counters: those of live streams are
    read at scrape time, those of closed streams are folded in when the
    connection goes, so the exported counters never go down."""

    FIELDS = ("coalesced", "dropped", "slow_closes", "degraded_events")

    def __init__(self) -> None:
        self._retired = dict.fromkeys(self.FIELDS, 0)

    def retire(self, stats) -> None:
        for name in self.FIELDS:
            self._retired[name] += getattr(stats, name, 0)

    def read(self, live: Iterable) -> dict[str, int]:
        totals = dict(self._retired)
        for stats in live:
            for name in self.FIELDS:
                totals[name] += getattr(stats, name, 0)
        return totals


class _LiveState(Collector):
    """Families read at scrape time: connections, queues, frame counts and
    the stream counters."""

    def __init__(self, read: Callable[[], dict], telemetry: Telemetry) -> None:
        self._read = read
        self._telemetry = telemetry

    def collect(self):
        state = self._read()
        telemetry = self._telemetry
        connections = GaugeMetricFamily("dashd_connections", "Open WebSocket connections", labels=["endpoint", "role"])
        for (endpoint, role), count in sorted(state["connections"].items()):
            connections.add_metric([endpoint, role], count)
        yield connections
        yield GaugeMetricFamily(
            "dashd_send_queue_depth", "Frames queued for slow clients, all connections", value=state["queued"]
        )
        yield GaugeMetricFamily("dashd_paused_clients", "Clients whose socket buffer is full", value=state["paused"])
        yield GaugeMetricFamily(
            "dashd_store_queue_rows", "Rows waiting to be written to the store", value=state["store_queue"]
        )
        yield GaugeMetricFamily("dashd_stream_seq", "Last stream sequence number issued", value=state["seq"])
        if "store_available" in state:
            yield GaugeMetricFamily(
                "dashd_store_available",
                "1 when the store's last database operation succeeded in time, else 0",
                value=1 if state["store_available"] else 0,
            )
        streams = telemetry.streams.read(state.get("stream_stats", ()))
        yield CounterMetricFamily(
            "dashd_updates_coalesced",
            "Metric updates replaced by a newer one in a slow client's queue",
            value=streams["coalesced"],
        )
        yield CounterMetricFamily(
            "dashd_updates_dropped", "Queued frames discarded when a slow client was closed", value=streams["dropped"]
        )
        yield CounterMetricFamily(
            "dashd_slow_consumer_closes", "Clients closed with 1013 for falling behind", value=streams["slow_closes"]
        )
        yield CounterMetricFamily(
            "dashd_stream_degraded", "Times a client's stream was marked degraded", value=streams["degraded_events"]
        )
        yield from _frame_families("sent", "to", telemetry.sent.totals())
        yield from _frame_families("received", "from", telemetry.received.totals())


class _ScheduleState(Collector):
    """The publisher's schedule (dashd.collect.schedule): ticks run, and the
    periods a late tick folded into the next one (coalesced, not skipped)."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self._read = read

    def collect(self):
        ticks, coalesced = self._read()
        yield CounterMetricFamily(
            "dashd_collector_ticks", "Collector ticks run (one sample published each)", value=ticks
        )
        yield CounterMetricFamily(
            "dashd_collector_ticks_coalesced",
            "Collection periods with no tick of their own because the previous tick "
            "(sample and fan-out) ran long; the next sample covers them",
            value=coalesced,
        )


def _frame_families(direction: str, preposition: str, totals: dict[str, tuple[int, int]]):
    messages = CounterMetricFamily(
        f"dashd_messages_{direction}", f"WebSocket messages {direction} {preposition} clients, by type", labels=["type"]
    )
    sizes = CounterMetricFamily(
        f"dashd_bytes_{direction}",
        f"WebSocket payload bytes (before compression) {direction} {preposition} clients, by type",
        labels=["type"],
    )
    for kind, (count, size) in sorted(totals.items()):
        messages.add_metric([kind], count)
        sizes.add_metric([kind], size)
    yield messages
    yield sizes


class Telemetry:
    """The daemon's Prometheus registry and the hooks that feed it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.sent = FrameCounts()
        self.received = FrameCounts()
        self.streams = StreamTotals()
        self.auth_failures = Counter(
            "dashd_auth_failures", "Refused authentications, by reason", ["reason"], registry=r
        )
        self.rate_limit_hits = Counter(
            "dashd_rate_limit_hits", "Inbound messages refused by the rate limit", registry=r
        )
        self.abuse_closes = Counter(
            "dashd_rate_limit_closes", "Connections closed (1008) for sustained abuse", registry=r
        )
        self.collection_seconds = Histogram(
            "dashd_collection_duration_seconds", "Time one psutil sample takes", buckets=LATENCY_BUCKETS, registry=r
        )
        self.store_write_seconds = Histogram(
            "dashd_store_write_duration_seconds", "Time one batch write takes", buckets=LATENCY_BUCKETS, registry=r
        )
        self.store_rows = Counter("dashd_store_rows_written", "Rows written to the store", registry=r)
        self.fanout_seconds = Histogram(
            "dashd_fanout_latency_seconds",
            "Sample taken to last frame written, per metrics update",
            buckets=FANOUT_BUCKETS,
            registry=r,
        )
        # Issue 19 collectors (dashd.collect.sources.SourceScheduler).
        self.collector_read_seconds = Histogram(
            "dashd_collector_read_duration_seconds",
            "Time one collector read takes in its thread, by collector",
            ["collector"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.collector_block_seconds = Histogram(
            "dashd_collector_reactor_block_seconds",
            "Time one collector tick holds the reactor thread, by collector",
            ["collector"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.query_refusals = Counter(
            "dashd_query_refused",
            "history/stats requests refused before the store, by reason (too_large, in_flight, user_budget, busy)",
            ["reason"],
            registry=r,
        )
        self.ingest_refusals = Counter(
            "dashd_ingest_refused",
            "Agent sample batches refused, by reason (sample_rate, series, store_busy, not_durable)",
            ["reason"],
            registry=r,
        )
        self._sampled_at: float | None = None
        # Alert delivery (docs/alerting.md): one count per attempt; labels are
        # admin-named channels and three outcomes, so they stay bounded.
        self.alert_attempts = Counter(
            "dashd_alert_delivery_attempts",
            "Alert delivery attempts, by channel and outcome (delivered, retry, dead)",
            ["channel", "outcome"],
            registry=r,
        )

    def watch(self, read: Callable[[], dict]) -> None:
        """Register the scrape-time reader: a dict with connections (a
        Counter of (endpoint, role)), queued, paused, store_queue, seq and
        stream_stats (the StreamStats of the live connections)."""
        self.registry.register(_LiveState(read, self))

    def watch_schedule(self, read: Callable[[], tuple[int, int]]) -> None:
        """Register the collector's (ticks run, periods coalesced) reader."""
        self.registry.register(_ScheduleState(read))

    # ----- hooks (once per sample)

    def sample_taken(self, seconds: float) -> None:
        """The collector finished a reading that took `seconds`; the hub
        fans it out next, in the same reactor turn (the bus is synchronous)."""
        self.collection_seconds.observe(seconds)
        self._sampled_at = time.perf_counter()

    def collector_read(self, collector: str, read_seconds: float, block_seconds: float) -> None:
        """An issue 19 collector read (in its thread) and published (on the reactor)."""
        self.collector_read_seconds.labels(collector).observe(read_seconds)
        self.collector_block_seconds.labels(collector).observe(block_seconds)

    def fanout_done(self, message, local_host: str, wall_clock_ms: int) -> None:
        """The hub wrote a stream message to every client. For this host's
        own samples the latency is measured on the monotonic clock from the
        end of the reading; for samples from elsewhere, from their
        (millisecond) timestamp."""
        if message.type != "metrics_update":
            return
        if self._sampled_at is not None and message.host == local_host:
            latency = time.perf_counter() - self._sampled_at
            self._sampled_at = None
        else:
            latency = (wall_clock_ms - message.timestamp_ms) / 1000.0
        self.fanout_seconds.observe(max(0.0, latency))

    # ----- hooks (cheap: called per frame)

    def frame_sent(self, kind: str | None, size: int) -> None:
        self.sent.add(kind, size)

    def frames_sent(self, kind: str | None, size: int, count: int) -> None:
        """The flat broadcast loop wrote one frame to `count` clients."""
        self.sent.add(kind, size, count)

    def frame_received(self, kind: str | None, size: int) -> None:
        self.received.add(kind, size)

    def stream_closed(self, stats) -> None:
        """A connection went away: keep its stream counters in the totals."""
        self.streams.retire(stats)

    # ----- hooks (rare)

    def auth_failed(self, reason: str) -> None:
        self.auth_failures.labels(reason=_reason_label(reason)).inc()

    def rate_limited(self, abuse_close: bool) -> None:
        if abuse_close:
            self.abuse_closes.inc()
        else:
            self.rate_limit_hits.inc()

    def query_refused(self, reason: str) -> None:
        self.query_refusals.labels(reason=reason).inc()

    def ingest_refused(self, reason: str) -> None:
        self.ingest_refusals.labels(reason=reason).inc()

    def alert_attempted(self, channel: str, status: str) -> None:
        self.alert_attempts.labels(channel=channel, outcome="retry" if status == "pending" else status).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _reason_label(reason: str) -> str:
    """Bounded label values, whatever the error text says."""
    lowered = reason.lower()
    for label in ("expired", "revoked", "disabled", "origin", "timeout", "password", "authorization"):
        if label in lowered:
            return label
    if "invalid" in lowered or "token" in lowered:
        return "invalid_token"
    return "missing"
