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
from typing import Any, Callable, Protocol

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dashd.collect.collector import Sample
from dashd.errors import Unavailable
from dashd.stream.bus import METRICS_TOPIC, NOTIFICATIONS_TOPIC, Bus, Subscription
from dashd.stream.catalogue import SeriesCatalogue
from dashd.stream.streams import (
    METRICS_UPDATE,
    NOTIFICATION,
    NOTIFICATION_ACK,
    ClientSink,
    ClientStream,
    FrameCache,
    OutboundFrame,
    StreamMessage,
)
from dashd.timefmt import iso_ms


def metric_keys(message: StreamMessage) -> tuple[str, ...]:
    """The metric names a message carries (what a subscription selects from)."""
    return tuple(message.metrics) if message.metrics else ()


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

    def advance_to(self, seq: int) -> None:
        """A number issued elsewhere (the Redis bus's global counter) was
        seen: later local numbers go above it."""
        if seq > self.last:
            self.last = seq
            if self.last > self._reserved:
                self._reserved = self.last + self.BLOCK
                self._write(self._reserved)

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

    def advance_to(self, seq: int) -> None:
        self.last = max(self.last, seq)

    def close(self) -> None:
        pass


class Sequence(Protocol):
    last: int

    def next(self) -> int: ...

    def advance_to(self, seq: int) -> None: ...

    def close(self) -> None: ...


# topic, bus message, its seq, and whether this node records it in the store
Delivery = Callable[[str, Any, int, bool], None]
# from_seq, to_seq, from_ms, to_ms: a range this node's clients may have missed
GapNotice = Callable[[int, int, "int | None", "int | None"], None]


class Sequencing(Protocol):
    """Where the hub's messages and their seq numbers come from: numbered
    here (LocalSequencing, the in-process bus) or numbered by the bus itself
    (the Redis bus, whose seq is global across nodes)."""

    @property
    def last(self) -> int: ...

    def next(self) -> int:
        """A node-local number, for messages the hub is handed directly."""

    def start(self, deliver: Delivery, gap: GapNotice) -> None: ...

    def stop(self) -> None: ...


class LocalSequencing:
    """The hub numbers every message it takes from the bus, in arrival order."""

    def __init__(self, bus: Bus, sequence: Sequence) -> None:
        self._bus = bus
        self._sequence = sequence
        self._subscriptions: list[Subscription] = []

    @property
    def last(self) -> int:
        return self._sequence.last

    def next(self) -> int:
        return self._sequence.next()

    def start(self, deliver: Delivery, gap: GapNotice) -> None:
        def on_message(topic: str, message: Any) -> None:
            deliver(topic, message, self._sequence.next(), True)

        self._subscriptions = [self._bus.subscribe(topic, on_message) for topic in (METRICS_TOPIC, NOTIFICATIONS_TOPIC)]

    def stop(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []
        self._sequence.close()


class SharedRing(Protocol):
    """A replay ring every node can read (the Redis bus's capped stream)."""

    def read_range(self, from_seq: int, to_seq: int) -> Deferred[list[tuple[str, Any, int]]]:
        """(topic, bus message, seq) for the seqs it still holds in the range, in order."""


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


class BroadcastWriter(Protocol):
    """The wire side of the flat broadcast loop (dashd.wire.broadcast)."""

    def write_many(self, frame: OutboundFrame, sinks: list[ClientSink]) -> list[ClientSink]:
        """Write `frame` now to every sink that can take it directly, in one
        loop; return the sinks it could not (the hub sends those through
        ClientSink.send_frame, the ordered per-client path)."""


class StreamSink(Protocol):
    """Where sequenced messages are persisted (the store)."""

    def record(self, message: StreamMessage) -> None: ...


@dataclass(frozen=True)
class ResumeResult:
    after_seq: int
    replayed: int
    recovered: int
    gaps: list[dict[str, int]]
    seq: int
    reset: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = {
            "after_seq": self.after_seq,
            "replayed": self.replayed,
            "recovered": self.recovered,
            "gaps": self.gaps,
            "seq": self.seq,
        }
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
        *,
        sequencing: Sequencing | None = None,
        shared_ring: SharedRing | None = None,
        writer: BroadcastWriter | None = None,
        on_fanout: Callable[[StreamMessage, int], None] = lambda message, clients: None,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._sequencing: Sequencing = sequencing if sequencing is not None else LocalSequencing(bus, sequence)
        self._shared_ring = shared_ring
        # With a writer, fan_out writes each frame to the clients that take it
        # directly in one loop; without one (domain tests, tools), per client.
        self.writer = writer
        self.ring = ReplayRing(ring_span)
        self._catalogue = catalogue
        self._sink = sink
        self._streams: set[ClientStream] = set()
        self.latest_sample: dict[str, StreamMessage] = {}
        # Every series the stream carried, with label values (the catalogue's `families`).
        self.series = SeriesCatalogue()
        # Called after each fan-out with the message and how many clients were attached (telemetry).
        self._on_fanout = on_fanout

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self._sequencing.start(self._on_bus_message, self.announce_gap)

    def stopService(self) -> Deferred[None] | None:
        self._sequencing.stop()
        return super().stopService()  # type: ignore[no-untyped-call,no-any-return]  # Twisted's Service is untyped

    @property
    def seq(self) -> int:
        return self._sequencing.last

    # ----- intake

    def _on_bus_message(self, topic: str, message: Any, seq: int, record: bool = True) -> None:
        stream_message = self._stream_message(topic, message, seq)
        if stream_message is not None:
            self._take(stream_message, record)

    def _stream_message(self, topic: str, message: Any, seq: int) -> StreamMessage | None:
        if isinstance(message, Sample):
            return StreamMessage(seq, METRICS_UPDATE, int(message.timestamp_ms), message.host, dict(message.metrics))
        if isinstance(message, dict) and message.get("type") in (NOTIFICATION, NOTIFICATION_ACK):
            return StreamMessage(seq, message["type"], int(message.get("timestamp_ms", 0)), body=message["data"])
        self.log.warn("ignoring an unknown bus message on {topic}: {kind}", topic=topic, kind=type(message).__name__)
        return None

    def publish(
        self,
        type_: str,
        timestamp_ms: int,
        *,
        host: str | None = None,
        metrics: dict[str, float] | None = None,
        body: dict[str, Any] | None = None,
    ) -> StreamMessage:
        """Number a message here (node-local seq), record it and fan it out."""
        message = StreamMessage(self._sequencing.next(), type_, int(timestamp_ms), host, metrics, body)
        self._take(message, True)
        return message

    def _take(self, message: StreamMessage, record: bool) -> None:
        self.ring.append(message, self._clock.seconds())
        if message.type == METRICS_UPDATE and message.host is not None:
            self.latest_sample[message.host] = message
            self.series.observe(message.host, message.timestamp_ms, message.metrics or {})
        # With a shared database only the node that produced a message
        # records it, so each is written once.
        if record and self._sink is not None:
            self._sink.record(message)
        self.fan_out(message)

    def announce_gap(self, from_seq: int, to_seq: int, from_ms: int | None, to_ms: int | None) -> None:
        """Tell every client it may have missed the messages numbered
        from_seq..to_seq (the bus lost them, e.g. during a Redis outage):
        one `resume_gap` with no correlation_id."""
        data: dict[str, Any] = {"from_seq": from_seq, "to_seq": to_seq}
        if from_ms is not None:
            data["from"] = iso_ms(from_ms)
        if to_ms is not None:
            data["to"] = iso_ms(to_ms)
        self.log.info(
            "clients may have missed seq {from_seq}..{to_seq}; sending resume_gap to {count}",
            from_seq=from_seq,
            to_seq=to_seq,
            count=len(self._streams),
        )
        for stream in list(self._streams):
            try:
                stream.send({"type": "resume_gap", "correlation_id": None, "data": data})
            except Exception:
                self.log.failure("sending resume_gap to a client failed")

    def fan_out(self, message: StreamMessage) -> None:
        cache = FrameCache(message)
        keys = metric_keys(message)
        writer = self.writer
        if writer is None:
            for stream in list(self._streams):
                try:
                    stream.offer(cache, keys)
                except Exception:
                    self.log.failure("delivering seq {seq} to a client failed", seq=message.seq)
        else:
            self._fan_out_flat(message, cache, keys, writer)
        self._on_fanout(message, len(self._streams))

    def _fan_out_flat(
        self, message: StreamMessage, cache: FrameCache, keys: tuple[str, ...], writer: BroadcastWriter
    ) -> None:
        """The flat loop: the clients that take the shared frame directly
        are written in one loop by the writer; per-client work (filters,
        throttling, queues of paused clients) only for the others."""
        direct: list[ClientSink] = []
        others: list[ClientStream] = []
        for stream in list(self._streams):
            try:
                if stream.take_directly(message):
                    direct.append(stream.sink)
                else:
                    others.append(stream)
            except Exception:
                self.log.failure("delivering seq {seq} to a client failed", seq=message.seq)
        if direct:
            frame = cache.frame(None)
            try:
                refused = writer.write_many(frame, direct)
            except Exception:
                self.log.failure("the flat write of seq {seq} failed; writing per client", seq=message.seq)
                refused = direct
            for sink in refused:
                try:
                    sink.send_frame(frame)
                except Exception:
                    self.log.failure("delivering seq {seq} to a client failed", seq=message.seq)
        for stream in others:
            try:
                stream.offer(cache, keys)
            except Exception:
                self.log.failure("delivering seq {seq} to a client failed", seq=message.seq)

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
        for message in sorted(self.latest_sample.values(), key=lambda m: m.seq):
            stream.offer(FrameCache(message), metric_keys(message))

    def known_metrics(self) -> tuple[str, ...]:
        """This node's catalogue plus the metric names other hosts (agents,
        other nodes) send, so clients can subscribe to those too."""
        names = dict.fromkeys(self._catalogue())
        names.update(dict.fromkeys(self.series.names()))
        return tuple(names)

    async def resume(
        self,
        stream: ClientStream,
        after_seq: int,
        backfill: Callable[[int, int], Any] | None,
        limit: int,
        correlation_id: Any = None,
    ) -> ResumeResult:
        """Replay to `stream` every message after `after_seq` it selects:
        from the store for what the ring no longer holds (marked recovered),
        then from the ring; then the live stream continues. Ranges neither
        holds are reported, in order, with `resume_gap`.

        At most `limit` messages are replayed (from the store and the ring
        alike): anything older is reported as a gap. The replay goes through
        the stream's send queue and waits for the client to read between
        frames, so a client that does not read holds one frame, not the
        whole replay, until its slow-consumer timeout closes it."""
        if self._shared_ring is not None:
            backfill = self._shared_backfill(backfill)
        stream.resuming = True
        # Messages this connection already got live (the latest sample sent
        # right after connection_ack, and everything after it) are not sent
        # again; everything before them and after after_seq is.
        live_from = stream.first_live_seq
        previous_last = stream.last_seq
        stream.last_seq = after_seq
        counts = {"replayed": 0, "recovered": 0}
        gaps: list[dict[str, int]] = []
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

        async def deliver(message: StreamMessage, kind: str) -> bool:
            """False when the client went away during the replay."""
            last_timestamp[0] = message.timestamp_ms
            if live_from is not None and message.seq >= live_from:
                stream.last_seq = max(stream.last_seq, message.seq)
                return True
            if stream.replay(message, metric_keys(message)):
                counts[kind] += 1
                if stream.backlogged:
                    return bool(await stream.writable())
            # Not selected: passed over all the same, so the catch-up below ends.
            stream.last_seq = max(stream.last_seq, message.seq)
            return True

        current = self.seq
        if after_seq > current:
            stream.last_seq = max(previous_last, current)
            stream.resuming = False
            return ResumeResult(after_seq, 0, 0, [], current, reset=True)
        if current - after_seq > limit:
            # More than a resume may replay: the oldest part is a gap.
            gap(after_seq + 1, current - limit, None)
        gone = False
        try:
            start = stream.last_seq
            ring_first = self.ring.first_seq
            oldest_in_ring = ring_first if ring_first is not None else current + 1
            # The ring holds everything from oldest_in_ring on; before that, the store.
            if start + 1 < oldest_in_ring:
                missing_from, missing_to = start + 1, oldest_in_ring - 1
                stored: list[StreamMessage] = []
                if backfill is not None:
                    try:
                        stored = list(await backfill(missing_from, missing_to))
                    except Unavailable as e:
                        # Expected during an outage: one line, and the range is a gap.
                        self.log.warn(
                            "resume: the store cannot answer ({reason}); reporting seq {from_seq}..{to_seq} as a gap",
                            reason=str(e),
                            from_seq=missing_from,
                            to_seq=missing_to,
                        )
                        stored = []
                    except Exception:
                        self.log.failure("resume could not read the store; reporting a gap")
                        stored = []
                expected = missing_from
                for message in stored:
                    if message.seq < expected or message.seq > missing_to:
                        continue
                    if message.seq > expected:
                        gap(expected, message.seq - 1, message.timestamp_ms)
                    if not await deliver(message.with_recovered(), "recovered"):
                        gone = True
                        break
                    expected = message.seq + 1
                del stored
                if not gone and expected <= missing_to:
                    ring_now = self.ring.after(missing_to)
                    gap(expected, missing_to, ring_now[0].timestamp_ms if ring_now else None)
        finally:
            # Whatever arrived while the store was read (or while the client
            # read the replay) is in the ring, unless the ring moved past it
            # meanwhile: then that part is a gap too. Caught up round by
            # round, at most `limit` messages in all.
            processed = 0
            while not gone:
                pending = self.ring.after(stream.last_seq)
                if not pending:
                    break
                if processed + len(pending) > limit:
                    skip_to = pending[-1].seq - max(0, limit - processed)
                    if skip_to >= pending[0].seq:
                        gap(stream.last_seq + 1, skip_to, None)
                        pending = [m for m in pending if m.seq > skip_to]
                if pending and pending[0].seq > stream.last_seq + 1:
                    gap(stream.last_seq + 1, pending[0].seq - 1, pending[0].timestamp_ms)
                for message in pending:
                    processed += 1
                    if not await deliver(message, "replayed"):
                        gone = True
                        break
            stream.last_seq = max(stream.last_seq, previous_last)
            stream.resuming = False
        return ResumeResult(after_seq, counts["replayed"], counts["recovered"], gaps, self.seq)

    def _shared_backfill(self, store_backfill: Callable[[int, int], Any] | None) -> Callable[[int, int], Any]:
        """What the local ring lacks: from the shared ring (other nodes' and
        older messages), and from the store for what it no longer holds."""
        shared_ring = self._shared_ring
        assert shared_ring is not None  # only called with one

        async def backfill(from_seq: int, to_seq: int) -> list[StreamMessage]:
            shared: list[StreamMessage] = []
            try:
                for topic, message, seq in await shared_ring.read_range(from_seq, to_seq):
                    stream_message = self._stream_message(topic, message, seq)
                    if stream_message is not None:
                        shared.append(stream_message)
            except Exception:
                self.log.failure("resume could not read the shared ring; using the store")
                shared = []
            first = shared[0].seq if shared else to_seq + 1
            stored: list[StreamMessage] = []
            if from_seq < first and store_backfill is not None:
                stored = [m for m in await store_backfill(from_seq, first - 1) if m.seq < first]
            return stored + shared

        return backfill
