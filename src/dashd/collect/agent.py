"""The agent's domain, without the network: a bounded buffer of samples not
yet confirmed by the hub (`SampleBuffer`), and the batching, confirmation
and back-off policy over one connection (`Uplink`).

`dashd agent` (dashd.agent) runs the collector into this buffer and the
Uplink over a WebSocket client (dashd.wire.agent_client) to a hub's
`/ingest` endpoint (dashd.wire.ingest; docs/protocol.md, *Agents*).

Samples go into a bounded local buffer (the oldest are dropped, with one log
line, when the hub stays away too long). While connected, the agent sends
the buffer in batches and removes a sample only when the hub's reply
confirms it, so a sample in flight when the hub restarts is sent again on
the next connection; the hub de-duplicates by (host, timestamp). Every
timer runs on an injected clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from dashd.collect.collector import Sample
from dashd.timefmt import iso_ms

log = Logger()

SECOND = 1.0
KIB = 1024

DEFAULT_BUFFER = 100_000  # samples; a day of 1 s samples is 86,400
DEFAULT_BATCH_INTERVAL = 1.0 * SECOND
DEFAULT_BATCH_SIZE = 500  # the hub's per-message maximum
DEFAULT_MAX_BATCH_BYTES = 60 * KIB  # under the hub's default 64 KiB max_message_size
MAX_IN_FLIGHT = 4  # batches sent and not yet confirmed
SHUTDOWN_FLUSH = 3.0 * SECOND
# Errors after which a batch will never be accepted: drop it rather than
# block the buffer behind it forever.
PERMANENT_ERRORS = ("bad_message", "forbidden", "too_large")


def sample_json(sample: Sample) -> dict:
    return {"host": sample.host, "timestamp": iso_ms(sample.timestamp_ms), "metrics": dict(sample.metrics)}


@dataclass(frozen=True)
class Batch:
    correlation_id: str
    timestamps: tuple[int, ...]
    payload: bytes


class SampleBuffer:
    """Samples not yet confirmed by the hub, oldest first, keyed by
    timestamp (the hub's de-duplication key), bounded by `capacity`."""

    def __init__(self, capacity: int = DEFAULT_BUFFER) -> None:
        self.capacity = capacity
        self._samples: OrderedDict[int, bytes] = OrderedDict()  # timestamp_ms -> encoded sample
        self._in_flight: set[int] = set()
        self.added = 0  # samples taken, over the agent's life
        self.dropped = 0
        self._drop_logged = False

    def add(self, sample: Sample) -> None:
        key = sample.timestamp_ms
        if key in self._samples:
            return  # the same instant twice (clock stepped back): the hub would drop it too
        self._samples[key] = orjson.dumps(sample_json(sample))
        self.added += 1
        while len(self._samples) > self.capacity:
            oldest, _ = self._samples.popitem(last=False)
            self._in_flight.discard(oldest)
            self.dropped += 1
            if not self._drop_logged:
                self._drop_logged = True
                log.warn(
                    "agent buffer full ({capacity} samples): dropping the oldest until the hub is back",
                    capacity=self.capacity,
                )

    def __len__(self) -> int:
        return len(self._samples)

    @property
    def unsent(self) -> int:
        return len(self._samples) - len(self._in_flight)

    def next_batch(self, correlation_id: str, max_samples: int, max_bytes: int) -> Batch | None:
        """The oldest unsent samples that fit one message; marks them in flight."""
        envelope = len(b'{"type":"samples","correlation_id":"","data":{"samples":[]}}') + len(correlation_id)
        size = envelope
        chosen: list[int] = []
        parts: list[bytes] = []
        for timestamp, encoded in self._samples.items():
            if timestamp in self._in_flight:
                continue
            if chosen and (len(chosen) >= max_samples or size + len(encoded) + 1 > max_bytes):
                break
            chosen.append(timestamp)
            parts.append(encoded)
            size += len(encoded) + 1
        if not chosen:
            return None
        self._in_flight.update(chosen)
        payload = (
            b'{"type":"samples","correlation_id":'
            + orjson.dumps(correlation_id)
            + b',"data":{"samples":['
            + b",".join(parts)
            + b"]}}"
        )
        return Batch(correlation_id, tuple(chosen), payload)

    def confirm(self, batch: Batch) -> None:
        """The hub has these: forget them."""
        for timestamp in batch.timestamps:
            self._samples.pop(timestamp, None)
            self._in_flight.discard(timestamp)
        if self._drop_logged and len(self._samples) < self.capacity // 2:
            self._drop_logged = False

    def unsend(self, batch: Batch) -> None:
        """Not confirmed: send these again later."""
        self._in_flight.difference_update(batch.timestamps)

    def reset_in_flight(self) -> None:
        """The connection is gone: everything unconfirmed is unsent again."""
        self._in_flight.clear()


class UplinkConnection(Protocol):
    """The open connection to the hub as the Uplink uses it
    (dashd.wire.agent_client.IngestClientProtocol)."""

    def send_bytes(self, payload: bytes) -> None: ...

    def close(self, code: int = 1000, reason: str = "") -> None: ...


class Uplink(Service):
    """The connection to the hub and the batching over it: sends the buffer
    in batches of at most `batch_size` samples / `max_batch_bytes` bytes
    every `batch_interval` (or at once when a full batch is waiting), at
    most MAX_IN_FLIGHT unconfirmed batches at a time."""

    def __init__(
        self,
        buffer: SampleBuffer,
        clock: IReactorTime,
        *,
        batch_interval: float = DEFAULT_BATCH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> None:
        self.buffer = buffer
        self.clock = clock
        self.batch_interval = batch_interval
        self.batch_size = batch_size
        self.max_batch_bytes = max_batch_bytes
        self.protocol: UplinkConnection | None = None
        self.acknowledged = False  # the hub sent connection_ack on this connection
        self._in_flight: dict[str, Batch] = {}
        self._counter = 0
        self._loop: LoopingCall | None = None
        self.confirmed = 0  # samples the hub confirmed, over the agent's life
        self.held_off = 0  # times the hub asked us to slow down
        # Back-pressure: after rate_limited / unavailable nothing is sent
        # until the hub's retry_after has passed.
        self._hold_until: float | None = None
        self._hold_timer: Any = None
        self._idle_waiters: list[defer.Deferred] = []

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self.pump)
        self._loop.clock = self.clock
        self._loop.start(self.batch_interval, now=False).addErrback(
            lambda f: log.failure("agent batch loop stopped", f)
        )

    def stopService(self) -> Any:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._hold_timer is not None and self._hold_timer.active():
            self._hold_timer.cancel()
        return super().stopService()

    # ----- connection events (from the protocol)

    def opened(self, protocol: UplinkConnection) -> None:
        self.protocol = protocol
        self.acknowledged = False
        self._in_flight.clear()
        self.buffer.reset_in_flight()

    def closed(self, protocol: UplinkConnection, code: int | None, reason: str | None) -> None:
        if protocol is not self.protocol:
            return
        was_acked = self.acknowledged
        self.protocol = None
        self.acknowledged = False
        self._in_flight.clear()
        self.buffer.reset_in_flight()
        if code == 4001:
            log.error("the hub refused the agent token ({reason}); retrying with back-off", reason=reason)
        elif was_acked:
            log.info(
                "connection to the hub closed ({code} {reason}); {pending} samples buffered",
                code=code,
                reason=reason or "",
                pending=len(self.buffer),
            )
        self._notify_idle()

    def received(self, protocol: UplinkConnection, message: dict) -> None:
        kind = message.get("type")
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        if kind == "connection_ack":
            self.acknowledged = True
            limits = data.get("limits") or {}
            if isinstance(limits.get("max_message_bytes"), int):
                self.max_batch_bytes = min(self.max_batch_bytes, max(1024, limits["max_message_bytes"] - 1024))
            if isinstance(limits.get("max_samples_per_message"), int):
                self.batch_size = min(self.batch_size, max(1, limits["max_samples_per_message"]))
            log.info(
                "connected to the hub as {host}; {pending} samples to send",
                host=data.get("host"),
                pending=len(self.buffer),
            )
            self.pump()
            return
        batch = self._in_flight.pop(str(message.get("correlation_id")), None)
        if kind == "samples" and batch is not None:
            self.buffer.confirm(batch)
            self.confirmed += len(batch.timestamps)
            self.pump()
        elif kind == "error":
            code = data.get("code")
            if batch is None:
                log.warn("the hub reported an error: {code} {message}", code=code, message=data.get("message"))
            elif code in PERMANENT_ERRORS:
                log.error(
                    "the hub refused a batch of {n} samples for good ({code}: {message}); dropped",
                    n=len(batch.timestamps),
                    code=code,
                    message=data.get("message"),
                )
                self.buffer.confirm(batch)
            else:  # unavailable, rate_limited, internal: resend later, not at once
                self.buffer.unsend(batch)
                self._hold_off(data.get("details"))
        self._notify_idle()

    # ----- sending

    def pump(self, force: bool = False) -> None:
        """Send batches while there is room; called by the batch timer, after
        each confirmation, and when a new sample arrives (full batches only)."""
        if self.protocol is None or not self.acknowledged:
            return
        if self._hold_until is not None:
            if self.clock.seconds() < self._hold_until:
                return
            self._hold_until = None
        while len(self._in_flight) < MAX_IN_FLIGHT and self.buffer.unsent:
            self._counter += 1
            batch = self.buffer.next_batch(f"b{self._counter}", self.batch_size, self.max_batch_bytes)
            if batch is None:
                break
            self._in_flight[batch.correlation_id] = batch
            self.protocol.send_bytes(batch.payload)

    def _hold_off(self, details: Any) -> None:
        """The hub asked us to slow down: send nothing for its retry_after
        (or one batch interval when it gave none), then pump again."""
        retry_after = details.get("retry_after") if isinstance(details, dict) else None
        if isinstance(retry_after, bool) or not isinstance(retry_after, (int, float)) or not 0 < retry_after <= 300:
            retry_after = self.batch_interval
        until = self.clock.seconds() + retry_after
        if self._hold_until is not None and self._hold_until >= until:
            return
        self._hold_until = until
        self.held_off += 1
        if self._hold_timer is not None and self._hold_timer.active():
            self._hold_timer.cancel()
        self._hold_timer = self.clock.callLater(retry_after, self.pump)

    def sample_added(self) -> None:
        if self.buffer.unsent >= self.batch_size:
            self.pump()

    # ----- shutdown

    @property
    def idle(self) -> bool:
        """Nothing left that could be sent and confirmed now."""
        return self.protocol is None or not self.acknowledged or (not self._in_flight and not self.buffer.unsent)

    def _notify_idle(self) -> None:
        if self.idle:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                if not waiter.called:
                    waiter.callback(None)

    async def flush(self, timeout: float) -> None:
        """Send what is buffered and wait (at most `timeout`) for the hub to confirm it."""
        self.pump()
        if self.idle:
            return
        waiter: defer.Deferred = defer.Deferred()
        self._idle_waiters.append(waiter)
        waiter.addTimeout(timeout, self.clock)
        try:
            await waiter
        except defer.TimeoutError:
            pass
