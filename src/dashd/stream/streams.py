"""Per-client streams: what each connection receives, at what rate, and what
happens when it cannot keep up. No networking here: a ClientStream writes to
a ClientSink (the protocol implements it) and is told by the protocol when
the socket's buffer is full (pause) or has drained (resume).
"""

from __future__ import annotations

import fnmatch
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Protocol, cast

import orjson
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from dashd.stream.selection import select, unknown_selectors
from dashd.timefmt import iso_ms

METRICS_UPDATE = "metrics_update"
NOTIFICATION = "notification"
NOTIFICATION_ACK = "notification_ack"
STREAM_TYPES = (METRICS_UPDATE, NOTIFICATION, NOTIFICATION_ACK)


def encode(message: Mapping[str, Any]) -> bytes:
    """The one JSON encoder for everything dashd sends."""
    return orjson.dumps(message)


@dataclass(frozen=True)
class StreamMessage:
    """One message of the daemon's sequenced stream."""

    seq: int
    type: str  # one of STREAM_TYPES
    timestamp_ms: int
    host: str | None = None
    metrics: Mapping[str, float] | None = None  # metrics_update
    body: Mapping[str, Any] | None = None  # notification / notification_ack data
    recovered: bool = False

    def with_recovered(self) -> StreamMessage:
        return StreamMessage(self.seq, self.type, self.timestamp_ms, self.host, self.metrics, self.body, True)

    def envelope(
        self, metric_names: Iterable[str] | None = None, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        if self.type == METRICS_UPDATE:
            metrics = self.metrics or {}
            if metric_names is not None:
                metrics = {name: metrics[name] for name in metric_names if name in metrics}
            data: dict[str, Any] = {"timestamp": iso_ms(self.timestamp_ms), "host": self.host, "metrics": metrics}
        else:
            data = dict(self.body or {})
        if self.recovered:
            data["recovered"] = True
        if extra:
            data.update(extra)
        return {"type": self.type, "seq": self.seq, "correlation_id": None, "data": data}


class OutboundFrame:
    """A serialized message, shared by every client that gets the same bytes.
    `prepared` is filled in once by the protocol layer (a framed copy).
    `kind` is the message's type, so telemetry can count frames by type
    without parsing the payload again."""

    __slots__ = ("payload", "prepared", "seq", "coalesce_key", "kind")

    def __init__(
        self, payload: bytes, seq: int | None = None, coalesce_key: str | None = None, kind: str | None = None
    ) -> None:
        self.payload = payload
        self.prepared: Any = None
        self.seq = seq
        # Frames with the same non-None key replace each other in a full queue.
        self.coalesce_key = coalesce_key
        self.kind = kind


def frame_of(message: Mapping[str, Any]) -> OutboundFrame:
    return OutboundFrame(encode(message), kind=message.get("type"))


class FrameCache:
    """The frames built for one stream message, one per distinct payload,
    so N clients with M distinct subscriptions cost M serializations."""

    __slots__ = ("message", "_frames")

    def __init__(self, message: StreamMessage) -> None:
        self.message = message
        self._frames: dict[Any, OutboundFrame] = {}

    def frame(self, metric_names: tuple[str, ...] | None) -> OutboundFrame:
        frame = self._frames.get(metric_names)
        if frame is None:
            message = self.message
            coalesce_key = f"metrics:{message.host}" if message.type == METRICS_UPDATE else None
            frame = OutboundFrame(encode(message.envelope(metric_names)), message.seq, coalesce_key, message.type)
            self._frames[metric_names] = frame
        return frame


class ClientSink(Protocol):
    def send_frame(self, frame: OutboundFrame) -> None:
        """Write one text frame now (the transport buffers it)."""

    def close(self, code: int, reason: str) -> None: ...


class SubscriptionFilter:
    """Metric selectors (names, globs, label matchers: dashd.stream.selection)
    and host patterns (names or shell globs) a client selected."""

    __slots__ = ("metrics", "hosts", "_selection_cache")

    def __init__(self, metrics: Iterable[str] = ("*",), hosts: Iterable[str] = ("*",)) -> None:
        self.metrics: tuple[str, ...] = tuple(dict.fromkeys(metrics))
        self.hosts: tuple[str, ...] = tuple(dict.fromkeys(hosts))
        self._selection_cache: dict[tuple[str, ...], tuple[str, ...] | None] = {}

    @property
    def pattern_count(self) -> int:
        return len(self.metrics) + len(self.hosts)

    def selected(self, available: tuple[str, ...]) -> tuple[str, ...] | None:
        """The metric names to send out of `available`; None means all of
        them (the shared, unfiltered payload)."""
        if "*" in self.metrics:
            return None
        if available in self._selection_cache:
            return self._selection_cache[available]
        chosen = tuple(select(self.metrics, available))
        if len(self._selection_cache) > 16:
            self._selection_cache.clear()
        self._selection_cache[available] = chosen
        return chosen

    def wants_host(self, host: str | None) -> bool:
        return "*" in self.hosts or any(fnmatch.fnmatchcase(host or "", p) for p in self.hosts)

    def as_dict(self) -> dict[str, Any]:
        return {"metrics": list(self.metrics), "hosts": list(self.hosts)}


# Shared by every client that has not subscribed to anything else (a
# subscription is replaced, never changed in place).
ALL_METRICS = SubscriptionFilter()
NO_METRICS = SubscriptionFilter(metrics=())
# An idle stream's send queue: an empty tuple, so thousands of idle clients
# allocate no deque; _enqueue makes a real one before the first append.
NO_QUEUE = cast("deque[OutboundFrame]", ())


def unknown_patterns(patterns: Iterable[str], known: Iterable[str]) -> list[str]:
    return unknown_selectors(patterns, known)


@dataclass
class WindowStats:
    """min/max/avg over the samples a throttled client's update folds in."""

    samples: int = 0
    minimum: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, metrics: Mapping[str, float]) -> None:
        self.samples += 1
        for name, value in metrics.items():
            if value is None:
                continue
            if name in self.minimum:
                self.minimum[name] = min(self.minimum[name], value)
                self.maximum[name] = max(self.maximum[name], value)
                self.total[name] += value
                self.counts[name] += 1
            else:
                self.minimum[name] = self.maximum[name] = self.total[name] = value
                self.counts[name] = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "min": self.minimum,
            "max": self.maximum,
            "avg": {name: round(self.total[name] / self.counts[name], 3) for name in self.total},
        }


class StreamStats:
    """Counters a stream keeps for operators (exported by the telemetry)."""

    __slots__ = ("sent", "coalesced", "degraded_events", "slow_closes", "dropped")

    def __init__(self) -> None:
        self.sent = 0
        self.coalesced = 0
        self.degraded_events = 0
        self.slow_closes = 0
        self.dropped = 0  # queued frames discarded when a slow consumer is closed


CLOSE_SLOW_CONSUMER = 1013
KIB = 1024
MIB = 1024 * KIB
DEFAULT_QUEUE_BYTES = 4 * MIB


class ClientStream:
    """Everything one connection is sent goes through here, in order.

    Writing: while the socket accepts data (not paused) frames go straight to
    the sink. While paused (the transport's buffer is over its high-water
    mark), frames wait in a bounded queue in which a newer metrics update for
    a host replaces the older one (stale metrics are worthless), while
    notifications and replies are kept. A client that stays paused longer
    than `slow_timeout`, or whose queue exceeds four times `queue_bound`
    frames or `queue_bytes` bytes of payload, is closed with 1013 and can
    resume. The byte bound is what bounds memory: a frame count alone lets
    256 history replies of 7 MB each wait for a client that never reads.

    Replays (resume) and replies go through the same queue as the live
    stream; only an empty, unpaused queue writes straight to the sink.
    Producers of many frames (a resume replay) wait for `writable()` between
    frames instead of filling the queue.
    """

    log = Logger()
    # One per connection: slots keep thousands of idle clients small.
    __slots__ = (
        "sink",
        "clock",
        "wants_metrics",
        "wants_notifications",
        "subscription",
        "queue_bound",
        "slow_timeout",
        "collection_hz",
        "stats",
        "live",
        "resuming",
        "last_seq",
        "first_live_seq",
        "_queue",
        "_paused",
        "_degraded",
        "_slow_timer",
        "_closed",
        "max_hz",
        "_last_sent_at",
        "_pending",
        "_windows",
        "_throttle_timers",
        "queue_bytes",
        "_queued_bytes",
        "_writable_waiters",
    )

    def __init__(
        self,
        sink: ClientSink,
        clock: IReactorTime,
        *,
        wants_metrics: bool,
        wants_notifications: bool,
        queue_bound: int = 64,
        slow_timeout: float = 30.0,
        collection_hz: float = 1.0,
        queue_bytes: int = DEFAULT_QUEUE_BYTES,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.wants_metrics = wants_metrics
        self.wants_notifications = wants_notifications
        self.subscription = ALL_METRICS if wants_metrics else NO_METRICS
        self.queue_bound = queue_bound
        self.queue_bytes = queue_bytes
        self._queued_bytes = 0
        self._writable_waiters: list[Deferred[bool]] = []
        self.slow_timeout = slow_timeout
        self.collection_hz = collection_hz
        self.stats = StreamStats()
        self.live = False  # set once authenticated; before that nothing streams
        self.resuming = False  # while a resume replays, live offers are skipped (the ring has them)
        self.last_seq = 0  # highest stream seq written (or queued) to this client
        self.first_live_seq: int | None = None  # first stream seq sent live on this connection
        # An empty tuple until something has to wait: most clients never
        # queue, and an empty deque costs ~600 bytes per connection.
        self._queue: deque[OutboundFrame] = NO_QUEUE
        self._paused = False
        self._degraded = False
        self._slow_timer: IDelayedCall | None = None
        self._closed = False
        # throttle state
        self.max_hz: float | None = None
        self._last_sent_at: dict[str | None, float] = {}
        self._pending: dict[str | None, StreamMessage] = {}
        self._windows: dict[str | None, WindowStats] = {}
        self._throttle_timers: dict[str | None, IDelayedCall] = {}

    # ----- what to send

    @property
    def effective_hz(self) -> float:
        if self.max_hz is None:
            return self.collection_hz
        return min(self.max_hz, self.collection_hz)

    def offer(self, cache: FrameCache, catalogue: tuple[str, ...]) -> None:
        """A new stream message from the hub."""
        if not self.live or self.resuming or self._closed:
            return
        message = cache.message
        if message.seq <= self.last_seq:
            return
        if message.type == METRICS_UPDATE:
            if not self.wants_metrics or not self.subscription.wants_host(message.host):
                return
            selected = self.subscription.selected(catalogue)
            if selected == ():
                return
            if self._throttled():
                self._throttle(message, selected)
                return
            self._write_stream(cache.frame(selected))
        elif self.wants_notifications:
            self._write_stream(cache.frame(None))

    def take_directly(self, message: StreamMessage) -> bool:
        """The flat broadcast loop's predicate (StreamHub.fan_out): whether
        this client takes `message`'s shared, unfiltered frame straight to
        its sink with no per-client work -- live, not resuming or closed,
        nothing queued, not paused, not throttled, and selecting the whole
        message. If so the write is recorded here (seq, counters) and the
        caller writes the frame; if not, nothing changed and the caller
        offers the message the usual way (offer)."""
        if (
            self._paused
            or self._queue
            or self._closed
            or not self.live
            or self.resuming
            or message.seq <= self.last_seq
        ):
            return False
        if message.type == METRICS_UPDATE:
            subscription = self.subscription
            if not self.wants_metrics or (
                subscription is not ALL_METRICS
                and not ("*" in subscription.metrics and subscription.wants_host(message.host))
            ):
                return False
            if self.max_hz is not None and self.max_hz < self.collection_hz:
                return False  # throttled: folded into windows per client
        elif not self.wants_notifications:
            return False
        self.last_seq = message.seq
        if self.first_live_seq is None:
            self.first_live_seq = message.seq
        self.stats.sent += 1
        return True

    def replay(self, message: StreamMessage, catalogue: tuple[str, ...]) -> bool:
        """Write a message during resume, unthrottled and uncoalesced (the
        replay is bounded by the ring and the resume limit). Returns whether
        the client's filter selected it."""
        if message.seq <= self.last_seq:
            return False
        if message.type == METRICS_UPDATE:
            if not self.wants_metrics or not self.subscription.wants_host(message.host):
                return False
            selected = self.subscription.selected(catalogue)
            if selected == ():
                return False
        elif not self.wants_notifications:
            return False
        else:
            selected = None
        self.last_seq = message.seq
        # Through the queue like everything else (never straight to the
        # sink while frames wait or the socket is full).
        self._write(OutboundFrame(encode(message.envelope(selected)), message.seq, kind=message.type))
        return True

    def send(self, message: Mapping[str, Any]) -> None:
        """A reply or control message (no seq), in order with the stream."""
        self._write(frame_of(message))

    def send_prepared(self, frame: OutboundFrame) -> None:
        """A message (no seq) serialized once for many clients, such as the
        process table (dashd.stream.processes), in order with the stream."""
        self._write(frame)

    # ----- throttle

    def _throttled(self) -> bool:
        return self.max_hz is not None and self.max_hz < self.collection_hz

    def set_rate(self, max_hz: float | None) -> None:
        self.max_hz = max_hz
        if not self._throttled():
            for host in list(self._pending):
                self._flush_throttled(host)

    def _throttle(self, message: StreamMessage, selected: tuple[str, ...] | None) -> None:
        host = message.host
        now = self.clock.seconds()
        assert self.max_hz is not None and message.metrics is not None  # only throttled metrics_update get here
        period = 1.0 / self.max_hz
        window = self._windows.setdefault(host, WindowStats())
        window.add(
            message.metrics if selected is None else {k: message.metrics[k] for k in selected if k in message.metrics}
        )
        self._pending[host] = message
        last = self._last_sent_at.get(host)
        # A little slack so a 1 Hz client of a 1 Hz-ish collector is not
        # pushed a whole period late by timer jitter.
        if last is None or now - last >= period * 0.95:
            self._flush_throttled(host)
        elif host not in self._throttle_timers:
            self._throttle_timers[host] = self.clock.callLater(last + period - now, self._flush_throttled, host)

    def _flush_throttled(self, host: str | None) -> None:
        timer = self._throttle_timers.pop(host, None)
        if timer is not None and timer.active():
            timer.cancel()
        message = self._pending.pop(host, None)
        window = self._windows.pop(host, None)
        if message is None or self._closed:
            return
        self._last_sent_at[host] = self.clock.seconds()
        selected = self.subscription.selected(tuple(message.metrics or ()))
        extra = {"window": window.as_dict()} if window is not None and window.samples > 1 else None
        payload = encode(message.envelope(selected, extra))
        self._write_stream(OutboundFrame(payload, message.seq, f"metrics:{host}", message.type))

    # ----- flow control

    def _write_stream(self, frame: OutboundFrame) -> None:
        if frame.seq is not None:
            self.last_seq = frame.seq
            if self.first_live_seq is None:
                self.first_live_seq = frame.seq
        self._write(frame)

    def _write(self, frame: OutboundFrame) -> None:
        if self._closed:
            return
        if not self._paused and not self._queue:
            self.stats.sent += 1
            self.sink.send_frame(frame)
            return
        self._enqueue(frame)

    def _enqueue(self, frame: OutboundFrame) -> None:
        if not self._queue:
            self._queue = deque()
        if frame.coalesce_key is not None:
            for index, queued in enumerate(self._queue):
                if queued.coalesce_key == frame.coalesce_key:
                    del self._queue[index]
                    self._queued_bytes -= len(queued.payload)
                    self.stats.coalesced += 1
                    self._mark_degraded()
                    break
        self._queue.append(frame)
        self._queued_bytes += len(frame.payload)
        if len(self._queue) > 4 * self.queue_bound:
            self._close_slow("send queue overflow")
        elif self._queued_bytes > self.queue_bytes:
            self._close_slow("send queue over its byte bound")

    def _mark_degraded(self) -> None:
        if self._degraded:
            return
        self._degraded = True
        self.stats.degraded_events += 1
        # Queued ahead of the coalesced update, so the client learns why the
        # next update skipped some samples.
        notice = frame_of(
            {
                "type": "stream_degraded",
                "correlation_id": None,
                "data": {
                    "reason": "slow_consumer",
                    "coalesced": self.stats.coalesced,
                    "effective_hz": round(self.effective_hz / 2, 3),
                },
            }
        )
        self._queue.appendleft(notice)
        self._queued_bytes += len(notice.payload)

    def pause(self) -> None:
        """The transport's buffer is full."""
        if self._paused:
            return
        self._paused = True
        if self._slow_timer is None:
            self._slow_timer = self.clock.callLater(self.slow_timeout, self._close_slow, "slow consumer")

    def resume(self) -> None:
        """The transport drained its buffer: write what waited, in order."""
        self._paused = False
        while self._queue and not self._paused and not self._closed:
            self.stats.sent += 1
            frame = self._queue.popleft()
            self._queued_bytes -= len(frame.payload)
            self.sink.send_frame(frame)
        if not self._queue:
            self._queue = NO_QUEUE
            self._queued_bytes = 0
        if not self._paused:
            self._cancel_slow_timer()
            if self._degraded and not self._queue:
                self._degraded = False
                self.sink.send_frame(
                    frame_of(
                        {
                            "type": "stream_degraded",
                            "correlation_id": None,
                            "data": {"reason": "recovered", "effective_hz": self.effective_hz},
                        }
                    )
                )
        if self.writable_now:
            self._wake_writers(True)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def queued_bytes(self) -> int:
        """Payload bytes waiting in the send queue."""
        return self._queued_bytes

    @property
    def writable_now(self) -> bool:
        """The socket takes data and nothing waits ahead of a new frame."""
        return not self._paused and not self._queue and not self._closed

    @property
    def backlogged(self) -> bool:
        """Earlier output has not been read yet: the socket's buffer is
        full, or frames wait in the queue."""
        return self._paused or bool(self._queue)

    def writable(self) -> Deferred[bool]:
        """Fires with True when the stream can take more frames without
        queueing them, or with False once it is closed. A replay awaits
        this between frames, so it never holds more than one frame queued."""
        if self._closed:
            return succeed(False)
        if self.writable_now:
            return succeed(True)
        waiter: Deferred[bool] = Deferred()
        self._writable_waiters.append(waiter)
        return waiter

    def _wake_writers(self, writable: bool) -> None:
        waiters, self._writable_waiters = self._writable_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(writable)

    @property
    def paused(self) -> bool:
        return self._paused

    def _cancel_slow_timer(self) -> None:
        if self._slow_timer is not None and self._slow_timer.active():
            self._slow_timer.cancel()
        self._slow_timer = None

    def _close_slow(self, why: str) -> None:
        # close() cancels the slow timer: on a queue overflow it is still pending.
        if self._closed:
            return
        self.stats.slow_closes += 1
        self.stats.dropped += len(self._queue)
        self.log.info(
            "closing a slow consumer ({why}, {queued} queued, {bytes} bytes)",
            why=why,
            queued=len(self._queue),
            bytes=self._queued_bytes,
        )
        self._queue = NO_QUEUE
        self._queued_bytes = 0
        self.close()
        self.sink.close(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect and resume")

    def close(self) -> None:
        """Stop everything; called when the connection goes away."""
        self._closed = True
        self._queue = NO_QUEUE
        self._queued_bytes = 0
        self._cancel_slow_timer()
        self._wake_writers(False)
        for timer in self._throttle_timers.values():
            if timer.active():
                timer.cancel()
        self._throttle_timers.clear()
        self._pending.clear()
        self._windows.clear()
