"""dashd's own health in Prometheus form (prometheus-client writes the text
format). One registry per daemon, so tests can run several in a process."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _LiveState(Collector):
    """Gauges read at scrape time: connections, queues."""

    def __init__(self, read: Callable[[], dict]) -> None:
        self._read = read

    def collect(self):
        state = self._read()
        connections = GaugeMetricFamily("dashd_connections", "Open WebSocket connections",
                                        labels=["endpoint", "role"])
        for (endpoint, role), count in sorted(state["connections"].items()):
            connections.add_metric([endpoint, role], count)
        yield connections
        yield GaugeMetricFamily("dashd_send_queue_depth", "Frames queued for slow clients, all connections",
                                value=state["queued"])
        yield GaugeMetricFamily("dashd_paused_clients", "Clients whose socket buffer is full", value=state["paused"])
        yield GaugeMetricFamily("dashd_store_queue_rows", "Rows waiting to be written to the store",
                                value=state["store_queue"])
        yield GaugeMetricFamily("dashd_stream_seq", "Last stream sequence number issued", value=state["seq"])


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_sent = Counter("dashd_messages_sent", "Messages sent to clients, by type", ["type"], registry=r)
        self.bytes_sent = Counter("dashd_bytes_sent", "Payload bytes sent to clients, by type", ["type"], registry=r)
        self.messages_received = Counter("dashd_messages_received", "Messages received from clients, by type",
                                         ["type"], registry=r)
        self.bytes_received = Counter("dashd_bytes_received", "Payload bytes received from clients", registry=r)
        self.coalesced = Counter("dashd_updates_coalesced", "Metric updates replaced by newer ones for slow clients",
                                 registry=r)
        self.slow_closes = Counter("dashd_slow_consumer_closes", "Clients closed with 1013 for falling behind",
                                   registry=r)
        self.auth_failures = Counter("dashd_auth_failures", "Refused authentications, by reason", ["reason"],
                                     registry=r)
        self.rate_limit_hits = Counter("dashd_rate_limit_hits", "Inbound messages refused by the rate limit",
                                       registry=r)
        self.abuse_closes = Counter("dashd_rate_limit_closes", "Connections closed (1008) for sustained abuse",
                                    registry=r)
        self.collection_seconds = Histogram("dashd_collection_duration_seconds", "Time one psutil sample takes",
                                            buckets=LATENCY_BUCKETS, registry=r)
        self.store_write_seconds = Histogram("dashd_store_write_duration_seconds", "Time one batch write takes",
                                             buckets=LATENCY_BUCKETS, registry=r)
        self.store_rows = Counter("dashd_store_rows_written", "Rows written to the store", registry=r)
        self.fanout_seconds = Histogram("dashd_fanout_latency_seconds",
                                        "Sample taken to last frame written, per stream message",
                                        buckets=LATENCY_BUCKETS, registry=r)

    def watch(self, read: Callable[[], dict]) -> None:
        self.registry.register(_LiveState(read))

    def auth_failed(self, reason: str) -> None:
        self.auth_failures.labels(reason=_reason_label(reason)).inc()

    def rate_limited(self, abuse_close: bool) -> None:
        if abuse_close:
            self.abuse_closes.inc()
        else:
            self.rate_limit_hits.inc()

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
