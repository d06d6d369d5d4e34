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
        self._sources_waiting: set[str] = set()  # read, not yet carried by a host sample
        self._sources_read: set[str] = set()

    def has_read(self, source: str) -> bool:
        """Whether a host sample has carried a reading of collector `source`
        yet (until then the catalogue announces its families with no label
        values)."""
        return source in self._sources_read

    @property
    def pending(self) -> int:
        """Series values waiting for the next host sample."""
        return len(self._pending)

    def publish(self, topic: str, message: Any) -> Deferred:
        if isinstance(message, SeriesSample):
            if message.host == self._host:
                self._sources_waiting.add(message.source)
                self._pending.update(message.values)
                return succeed(None)
            return self._bus.publish(METRICS_TOPIC, Sample(message.host, message.timestamp_ms, dict(message.values)))
        if topic == METRICS_TOPIC and isinstance(message, Sample) and message.host == self._host:
            message = self._fold(message)
        return self._bus.publish(topic, message)

    def _fold(self, sample: Sample) -> Sample:
        self._sources_read |= self._sources_waiting
        self._sources_waiting.clear()
        if not self._pending:
            return sample
        pending, self._pending = self._pending, {}
        # The seed metrics come first and win a name clash (none today):
        # their names and places are fixed.
        folded = dict(sample.metrics)
        for name, value in pending.items():
            folded.setdefault(name, value)
        return replace(sample, metrics=folded)

    def subscribe(self, topic: str, subscriber: Any) -> Any:
        return self._bus.subscribe(topic, subscriber)
