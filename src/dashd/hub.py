"""The stream hub (the original specification's BroadcastService): gives
every sample and notification from the bus its `seq`, keeps the replay ring,
hands each message to the store, and fans it out to the client streams,
serializing once per distinct payload.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Protocol

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .timefmt import iso_ms

from .bus import METRICS_TOPIC, NOTIFICATIONS_TOPIC, Bus
from .collector import Sample
from .streams import (
    METRICS_UPDATE,
    NOTIFICATION,
    NOTIFICATION_ACK,
    ClientStream,
    FrameCache,
    StreamMessage,
)


class SequenceFile:
    """Persists how far `seq` may have gone, so numbers keep growing across
    restarts. Numbers are reserved in blocks: after a crash the daemon starts
    above every number it could have issued (the skipped numbers are reported
    to resuming clients as a gap), after a clean stop it continues exactly."""

    BLOCK = 10_000

    def __init__(self, path: str) -> None:
        self._path = path
        self._reserved = self._read()
        self.last = self._reserved  # last issued; start above anything reserved before

    def _read(self) -> int:
        try:
            with open(self._path, encoding="ascii") as f:
                return int(f.read().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            raise ValueError(f"{self._path} does not hold a sequence number; remove it to start from 0") from None

    def _write(self, value: int) -> None:
        directory = os.path.dirname(self._path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".seq-")
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(f"{value}\n")
        os.replace(tmp, self._path)

    def next(self) -> int:
        self.last += 1
        if self.last > self._reserved:
            # A small local file write once per BLOCK numbers.
            self._reserved = self.last + self.BLOCK
            self._write(self._reserved)
        return self.last

    def close(self) -> None:
        """Clean stop: the next start continues at last + 1."""
        self._reserved = self.last
        self._write(self.last)


class MemorySequence:
    """For tests and tools: numbers that live only in memory."""

    def __init__(self, start: int = 0) -> None:
        self.last = start

    def next(self) -> int:
        self.last += 1
        return self.last

    def close(self) -> None:
        pass


class Sequence(Protocol):
    last: int

    def next(self) -> int: ...

    def close(self) -> None: ...


class ReplayRing:
    """Recent stream messages, oldest first, bounded by age and count."""

    def __init__(self, span_seconds: float, max_messages: int = 200_000) -> None:
        self.span_ms = int(span_seconds * 1000)
        self._messages: deque[tuple[float, StreamMessage]] = deque(maxlen=max_messages)

    def append(self, message: StreamMessage, now: float) -> None:
        self._messages.append((now, message))
        horizon = now - self.span_ms / 1000.0
        while self._messages and self._messages[0][0] < horizon:
            self._messages.popleft()

    @property
    def first_seq(self) -> int | None:
        return self._messages[0][1].seq if self._messages else None

    def after(self, seq: int) -> list[StreamMessage]:
        """Messages with a seq above `seq`, in order."""
        result = []
        for _, message in reversed(self._messages):
            if message.seq <= seq:
                break
            result.append(message)
        result.reverse()
        return result

    def __len__(self) -> int:
        return len(self._messages)


class StreamSink(Protocol):
    """Where sequenced messages are persisted (the store)."""

    def record(self, message: StreamMessage) -> None: ...


@dataclass(frozen=True)
class ResumeResult:
    after_seq: int
    replayed: int
    recovered: int
    gaps: list[dict]
    seq: int
    reset: bool = False

    def as_dict(self) -> dict:
        data = {"after_seq": self.after_seq, "replayed": self.replayed, "recovered": self.recovered,
                "gaps": self.gaps, "seq": self.seq}
        if self.reset:
            data["reset"] = True
        return data


class StreamHub(Service):
    """Sequencer, replay ring and fan-out."""

    log = Logger()

    def __init__(
        self,
        bus: Bus,
        clock: IReactorTime,
        sequence: Sequence,
        ring_span: float,
        catalogue: Callable[[], tuple[str, ...]],
        sink: StreamSink | None = None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._sequence = sequence
        self.ring = ReplayRing(ring_span)
        self._catalogue = catalogue
        self._sink = sink
        self._streams: set[ClientStream] = set()
        self.latest_sample: dict[str, StreamMessage] = {}
        self._subscriptions: list = []
        self.on_fanout: Callable[[StreamMessage, int], None] = lambda message, clients: None

    def startService(self) -> None:
        super().startService()
        self._subscriptions = [
            self._bus.subscribe(METRICS_TOPIC, self._on_bus_message),
            self._bus.subscribe(NOTIFICATIONS_TOPIC, self._on_bus_message),
        ]

    def stopService(self):
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        self._sequence.close()
        return super().stopService()

    @property
    def seq(self) -> int:
        return self._sequence.last

    # ----- intake

    def _on_bus_message(self, topic: str, message: Any) -> None:
        if isinstance(message, Sample):
            self.publish(METRICS_UPDATE, message.timestamp_ms, host=message.host, metrics=dict(message.metrics))
        elif isinstance(message, dict) and message.get("type") in (NOTIFICATION, NOTIFICATION_ACK):
            body = message["data"]
            self.publish(message["type"], message.get("timestamp_ms", 0), body=body)
        else:
            self.log.warn("ignoring an unknown bus message on {topic}: {kind}", topic=topic, kind=type(message).__name__)

    def publish(self, type_: str, timestamp_ms: int, *, host: str | None = None,
                metrics: dict | None = None, body: dict | None = None) -> StreamMessage:
        message = StreamMessage(self._sequence.next(), type_, int(timestamp_ms), host, metrics, body)
        self.ring.append(message, self._clock.seconds())
        if type_ == METRICS_UPDATE:
            self.latest_sample[host] = message
        if self._sink is not None:
            self._sink.record(message)
        self.fan_out(message)
        return message

    def fan_out(self, message: StreamMessage) -> None:
        cache = FrameCache(message)
        catalogue = self._catalogue()
        for stream in list(self._streams):
            try:
                stream.offer(cache, catalogue)
            except Exception:
                self.log.failure("delivering seq {seq} to a client failed", seq=message.seq)
        self.on_fanout(message, len(self._streams))

    # ----- clients

    def attach(self, stream: ClientStream) -> None:
        self._streams.add(stream)

    def detach(self, stream: ClientStream) -> None:
        self._streams.discard(stream)

    @property
    def streams(self) -> frozenset[ClientStream]:
        return frozenset(self._streams)

    def send_latest(self, stream: ClientStream) -> None:
        """Right after connection_ack: the newest sample of each host, so a new
        dashboard has values at once."""
        catalogue = self._catalogue()
        for message in sorted(self.latest_sample.values(), key=lambda m: m.seq):
            stream.offer(FrameCache(message), catalogue)

    async def resume(self, stream: ClientStream, after_seq: int,
                     backfill: Callable[[int, int], Any] | None, limit: int,
                     correlation_id: Any = None) -> ResumeResult:
        """Replay to `stream` every message after `after_seq` it selects:
        from the store for what the ring no longer holds (marked recovered),
        then from the ring; then the live stream continues. Ranges neither
        holds are reported, in order, with `resume_gap`."""
        stream.resuming = True
        catalogue = self._catalogue()
        # Messages this connection already got live (the latest sample sent
        # right after connection_ack, and everything after it) are not sent
        # again; everything before them and after after_seq is.
        live_from = stream.first_live_seq
        previous_last = stream.last_seq
        stream.last_seq = after_seq
        counts = {"replayed": 0, "recovered": 0}
        gaps: list[dict] = []
        last_timestamp: list[int | None] = [None]

        def gap(from_seq: int, to_seq: int, next_timestamp: int | None) -> None:
            data: dict[str, Any] = {"from_seq": from_seq, "to_seq": to_seq}
            if last_timestamp[0] is not None:
                data["from"] = iso_ms(last_timestamp[0])
            if next_timestamp is not None:
                data["to"] = iso_ms(next_timestamp)
            gaps.append(data)
            stream.send({"type": "resume_gap", "correlation_id": correlation_id, "data": data})
            stream.last_seq = max(stream.last_seq, to_seq)

        def deliver(message: StreamMessage, kind: str) -> None:
            last_timestamp[0] = message.timestamp_ms
            if live_from is not None and message.seq >= live_from:
                stream.last_seq = max(stream.last_seq, message.seq)
            elif stream.replay(message, catalogue):
                counts[kind] += 1

        current = self.seq
        if after_seq > current:
            stream.last_seq = max(previous_last, current)
            stream.resuming = False
            return ResumeResult(after_seq, 0, 0, [], current, reset=True)
        try:
            ring_first = self.ring.first_seq
            oldest_in_ring = ring_first if ring_first is not None else current + 1
            # The ring holds everything from oldest_in_ring on; before that, the store.
            if after_seq + 1 < oldest_in_ring:
                missing_from, missing_to = after_seq + 1, oldest_in_ring - 1
                if missing_to - missing_from + 1 > limit:
                    gap(missing_from, missing_to - limit, None)
                    missing_from = missing_to - limit + 1
                stored: list[StreamMessage] = []
                if backfill is not None:
                    try:
                        stored = list(await backfill(missing_from, missing_to))
                    except Exception:
                        self.log.failure("resume could not read the store; reporting a gap")
                        stored = []
                expected = missing_from
                for message in stored:
                    if message.seq < expected or message.seq > missing_to:
                        continue
                    if message.seq > expected:
                        gap(expected, message.seq - 1, message.timestamp_ms)
                    deliver(message.with_recovered(), "recovered")
                    expected = message.seq + 1
                if expected <= missing_to:
                    ring_now = self.ring.after(missing_to)
                    gap(expected, missing_to, ring_now[0].timestamp_ms if ring_now else None)
        finally:
            # Whatever arrived while the store was read is in the ring, unless
            # the ring moved past it meanwhile: then that part is a gap too.
            pending = self.ring.after(stream.last_seq)
            if pending and pending[0].seq > stream.last_seq + 1:
                gap(stream.last_seq + 1, pending[0].seq - 1, pending[0].timestamp_ms)
            for message in pending:
                deliver(message, "replayed")
            stream.last_seq = max(stream.last_seq, previous_last)
            stream.resuming = False
        return ResumeResult(after_seq, counts["replayed"], counts["recovered"], gaps, self.seq)

