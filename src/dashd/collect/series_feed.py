"""Where the issue 19 collectors' readings join the stream.

Each collector read (a `SeriesSample`) is folded into the host's next
`Sample` -- the one the seed's host collector publishes every `interval` on
the metrics topic -- so that labelled series ride in the same
`metrics_update` (same seq, same timestamp) as cpu_usage and the other seed
metrics. Everything downstream (hub, replay ring, store, resume, alert
rules, the Redis bus) already handles a Sample, and every `metrics_update`
still carries every seed metric, so clients that read cpu_usage from each
update keep working.

The price, documented in docs/protocol.md: a collector value is stamped with
the host sample that carries it (at most one `interval` after the read), and
a collector that reads more often than `interval` is subsampled (the newest
reading of each series wins).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred, succeed

from dashd.collect.collector import Sample
from dashd.collect.sources import SeriesSample
from dashd.stream.bus import METRICS_TOPIC, Bus


class SeriesFolding:
    """A Publisher (dashd.collect.sources) in front of the bus, shared by the
    SourceScheduler and the host CollectorService: SeriesSample readings wait
    here; the next Sample of `host` takes them along. Anything else passes
    through unchanged (the process table, other hosts' samples)."""

    def __init__(self, bus: Bus, host: str) -> None:
        self._bus = bus
        self._host = host
        self._pending: dict[str, float] = {}

    @property
    def pending(self) -> int:
        """Series values waiting for the next host sample."""
        return len(self._pending)

    def publish(self, topic: str, message: Any) -> Deferred:
        if isinstance(message, SeriesSample):
            if message.host == self._host:
                self._pending.update(message.values)
                return succeed(None)
            return self._bus.publish(METRICS_TOPIC, Sample(message.host, message.timestamp_ms, dict(message.values)))
        if topic == METRICS_TOPIC and isinstance(message, Sample) and message.host == self._host and self._pending:
            pending, self._pending = self._pending, {}
            # The seed metrics come first and win a name clash (none today):
            # their names and places are fixed.
            folded = dict(message.metrics)
            for name, value in pending.items():
                folded.setdefault(name, value)
            message = replace(message, metrics=folded)
        return self._bus.publish(topic, message)

    def subscribe(self, topic: str, subscriber: Any) -> Any:
        return self._bus.subscribe(topic, subscriber)
