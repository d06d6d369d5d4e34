"""The hub's side of agents, without the network: validating a batch of
samples (`validate_batch`), de-duplicating by (host, timestamp_ms)
(`RecentTimestamps`, with the store as the fallback), the per-host limits
(`AgentLimits`, `HostQuota`) and `IngestService`, which publishes accepted
samples and waits until the store holds them.

The `/ingest` WebSocket endpoint that feeds it is dashd.wire.ingest; the
wire format and the limits are in its module comment and docs/protocol.md.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Protocol, Sequence

from twisted.internet.defer import Deferred, DeferredLock
from twisted.logger import Logger

from dashd.clients.queries import CostBucket
from dashd.collect.collector import Sample
from dashd.errors import ProtocolError
from dashd.timefmt import iso_ms

log = Logger()

SECOND = 1.0
MINUTE = 60 * SECOND

MAX_SAMPLES_PER_MESSAGE = 500
MAX_METRICS_PER_SAMPLE = 200
MAX_FUTURE_SKEW_MS = int(5 * MINUTE * 1000)  # agent clocks ahead by more than this are refused
MIN_TIMESTAMP_MS = 946_684_800_000  # 2000-01-01: anything older is a broken clock
METRIC_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MAX_HOST_NAME = 128
# Timestamps remembered per host for de-duplication without the store; an
# older resend (or the first batch after a hub restart) is checked against
# the store instead.
DEDUP_WINDOW = 20_000


def _bad(message: str, **details: Any) -> ProtocolError:
    return ProtocolError("bad_message", message, details or None)


def parse_timestamp(value: object, index: int) -> int:
    """An ISO-8601 timestamp with a time zone -> Unix ms (ValueError-free:
    raises ProtocolError bad_message)."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        raise _bad(
            f"samples[{index}].timestamp must be an ISO-8601 string such as 2026-11-26T10:00:01.000Z", index=index
        )
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"samples[{index}].timestamp is not ISO-8601: {value[:40]!r}", index=index) from None
    if moment.tzinfo is None:
        raise _bad(f"samples[{index}].timestamp needs a time zone (end it with Z)", index=index)
    return round(moment.timestamp() * 1000)


def validate_batch(data: object, host: str, now_ms: int) -> list[Sample]:
    """The samples of one `samples` message, all valid, or a ProtocolError
    (bad_message, too_large, or forbidden for another host's sample). The
    batch is accepted or refused as a whole."""
    if not isinstance(data, dict):
        raise _bad("samples: 'data' must be an object")
    samples = data.get("samples")
    if not isinstance(samples, list) or not samples:
        raise _bad("samples: 'samples' must be a non-empty list")
    if len(samples) > MAX_SAMPLES_PER_MESSAGE:
        raise ProtocolError(
            "too_large",
            f"samples: at most {MAX_SAMPLES_PER_MESSAGE} samples per message",
            {"max_samples": MAX_SAMPLES_PER_MESSAGE},
        )
    result: list[Sample] = []
    for index, item in enumerate(samples):
        if not isinstance(item, dict):
            raise _bad(f"samples[{index}] must be an object", index=index)
        sample_host = item.get("host")
        if not isinstance(sample_host, str) or not sample_host:
            raise _bad(f"samples[{index}].host must be a non-empty string", index=index)
        if sample_host != host:
            raise ProtocolError(
                "forbidden",
                f"samples[{index}]: this agent may publish only for host {host!r}",
                {"index": index, "host": host},
            )
        timestamp_ms = parse_timestamp(item.get("timestamp"), index)
        if timestamp_ms > now_ms + MAX_FUTURE_SKEW_MS:
            raise _bad(
                f"samples[{index}].timestamp is more than {MAX_FUTURE_SKEW_MS // 1000}s in the future "
                f"(check the agent's clock)",
                index=index,
            )
        if timestamp_ms < MIN_TIMESTAMP_MS:
            raise _bad(f"samples[{index}].timestamp is before the year 2000", index=index)
        metrics = item.get("metrics")
        if not isinstance(metrics, dict):
            raise _bad(f"samples[{index}].metrics must be an object", index=index)
        if len(metrics) > MAX_METRICS_PER_SAMPLE:
            raise ProtocolError(
                "too_large",
                f"samples[{index}]: at most {MAX_METRICS_PER_SAMPLE} metrics per sample",
                {"index": index, "max_metrics": MAX_METRICS_PER_SAMPLE},
            )
        for name, value in metrics.items():
            if not METRIC_NAME.match(name):
                raise _bad(
                    f"samples[{index}]: metric names are 1-64 characters of A-Z, a-z, 0-9 and _ (got {name[:70]!r})",
                    index=index,
                )
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise _bad(f"samples[{index}].metrics.{name} must be a finite number", index=index)
        result.append(Sample(host=host, timestamp_ms=timestamp_ms, metrics={k: v for k, v in metrics.items()}))
    return result


class RecentTimestamps:
    """The timestamps recently accepted for one host (bounded), and the
    newest timestamp known to be stored for it."""

    def __init__(self, newest_stored: int | None, size: int = DEDUP_WINDOW) -> None:
        self.newest: int | None = newest_stored
        self._order: deque[int] = deque()
        self._seen: set[int] = set()
        self._size = size

    def __contains__(self, timestamp_ms: int) -> bool:
        return timestamp_ms in self._seen

    def is_newer(self, timestamp_ms: int) -> bool:
        """Above everything stored for this host: certainly not a duplicate."""
        return self.newest is None or timestamp_ms > self.newest

    def forget(self, timestamps: Iterable[int]) -> None:
        """Timestamps accepted but not stored after all: a resend is new.
        (`newest` stays: older resends are checked against the store.)"""
        for timestamp_ms in timestamps:
            self._seen.discard(timestamp_ms)

    def add(self, timestamp_ms: int) -> None:
        if timestamp_ms in self._seen:
            return
        self._seen.add(timestamp_ms)
        self._order.append(timestamp_ms)
        if len(self._order) > self._size:
            self._seen.discard(self._order.popleft())
        if self.newest is None or timestamp_ms > self.newest:
            self.newest = timestamp_ms


STORE_HIGH_WATER = 0.5  # refuse batches while the store's queue is more than half full
STORE_BUSY_RETRY = 1.0  # seconds


@dataclass(frozen=True)
class AgentLimits:
    """What one agent host may publish."""

    samples_per_second: float
    max_series: int
    burst: int = MAX_SAMPLES_PER_MESSAGE  # a full batch must always fit


class HostQuota:
    """One host's sample bucket and the metric names it has published."""

    def __init__(self, limits: AgentLimits, now: float) -> None:
        self.bucket = CostBucket(limits.samples_per_second, max(limits.burst, limits.samples_per_second), now)
        self.series: set[str] = set()


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    last_timestamp_ms: int

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "last_timestamp": iso_ms(self.last_timestamp_ms),
        }


class SampleTimes(Protocol):
    """The store's named reads for de-duplication (dashd.store.database.Store)."""

    async def newest_timestamp(self, host: str) -> int | None: ...

    async def sample_times(self, host: str, from_ms: int, to_ms: int) -> set[int]: ...


class StoredTimestamps:
    """What the store already holds for a host (the de-duplication fallback
    after a hub restart or for resends older than the window)."""

    def __init__(self, store: SampleTimes) -> None:
        self._store = store

    async def newest(self, host: str) -> int | None:
        return await self._store.newest_timestamp(host)

    async def present(self, host: str, from_ms: int, to_ms: int) -> set[int]:
        return await self._store.sample_times(host, from_ms, to_ms)


class IngestService:
    """Accepts validated batches: de-duplicates per host, publishes, waits
    until the store has the samples. One batch per host at a time (a lock
    per host), so two connections of one agent cannot both accept a sample."""

    def __init__(
        self,
        publish: Callable[[Sample], Deferred],
        stored: StoredTimestamps | None,
        flush: Callable[[], Deferred] | None,
        window: int = DEDUP_WINDOW,
        *,
        limits: AgentLimits | None = None,
        clock: Any = None,
        durable: Callable[[], Deferred] | None = None,
        store_backlog: Callable[[], tuple[int, int]] | None = None,
        on_refused: Callable[[str], None] = lambda reason: None,
        accepting: Callable[[], bool] = lambda: True,
    ) -> None:
        self._publish = publish
        # accepting() -> False while the hub shuts down: it no longer
        # sequences or stores, so samples accepted now would be lost.
        self._accepting = accepting
        self._stored = stored
        self._flush = flush
        self._window = window
        self._hosts: dict[str, RecentTimestamps] = {}
        self._locks: dict[str, DeferredLock] = {}
        self._limits = limits
        self._clock = clock
        # durable() -> Deferred[bool]: the store's write ticket; True once
        # every row recorded so far is written (Store.when_written).
        self._durable_ticket = durable
        # store_backlog() -> (rows queued, queue capacity)
        self._store_backlog = store_backlog
        self._on_refused = on_refused
        self._quotas: dict[str, HostQuota] = {}

    def is_accepting(self) -> bool:
        """False once the hub stopped: agents are told to come back later."""
        return self._accepting()

    async def accept(self, host: str, samples: Sequence[Sample]) -> IngestResult:
        lock = self._locks.setdefault(host, DeferredLock())
        await lock.acquire()
        try:
            fresh = await self._fresh(host, samples)
            if fresh:
                self._check_limits(host, fresh)
            recent = self._hosts[host]
            for sample in fresh:
                recent.add(sample.timestamp_ms)
                d = self._publish(sample)
                d.addErrback(lambda f: log.failure("publishing an agent sample failed", f))
            ticket = self._durable_ticket() if fresh and self._durable_ticket is not None else None
        finally:
            lock.release()
        if ticket is not None:
            if not await ticket:
                # Not on disk (the write failed, or rows were dropped before
                # it): not confirmed, and not remembered, so the agent's
                # resend is accepted rather than counted as a duplicate.
                recent.forget(sample.timestamp_ms for sample in fresh)
                self._refused("not_durable")
                raise ProtocolError(
                    "unavailable",
                    "the store did not confirm these samples; resend them",
                    {"retry_after": STORE_BUSY_RETRY},
                )
        elif fresh and self._flush is not None:
            await self._durable()
        return IngestResult(len(fresh), len(samples) - len(fresh), max(s.timestamp_ms for s in samples))

    def _refused(self, reason: str) -> None:
        try:
            self._on_refused(reason)
        except Exception:
            log.failure("counting an ingest refusal failed")

    def _check_limits(self, host: str, fresh: Sequence[Sample]) -> None:
        """Refuse the batch (ProtocolError) when it would take the host over
        its limits or the store's queue past its high-water mark. Checked
        before anything is published, so a refused batch leaves no trace."""
        if self._store_backlog is not None:
            queued, capacity = self._store_backlog()
            rows = sum(len(sample.metrics) for sample in fresh)
            if queued + rows > capacity * STORE_HIGH_WATER:
                self._refused("store_busy")
                raise ProtocolError(
                    "rate_limited",
                    "the store is behind; resend these samples shortly",
                    {"retry_after": STORE_BUSY_RETRY},
                )
        limits = self._limits
        if limits is None:
            return
        now = self._clock.seconds()
        quota = self._quotas.get(host)
        if quota is None:
            quota = self._quotas[host] = HostQuota(limits, now)
        new_series = {name for sample in fresh for name in sample.metrics} - quota.series
        if len(quota.series) + len(new_series) > limits.max_series:
            self._refused("series")
            raise ProtocolError(
                "too_large",
                f"host {host!r} may publish at most {limits.max_series} distinct metrics ({len(quota.series)} so far)",
                {"max_series": limits.max_series},
            )
        if not quota.bucket.take(len(fresh), now):
            self._refused("sample_rate")
            raise ProtocolError(
                "rate_limited",
                f"host {host!r} may publish {limits.samples_per_second:g} samples per second; resend later",
                {
                    "retry_after": round(quota.bucket.retry_after(len(fresh)), 3),
                    "samples_per_second": limits.samples_per_second,
                },
            )
        quota.series |= new_series

    async def _fresh(self, host: str, samples: Sequence[Sample]) -> list[Sample]:
        recent = self._hosts.get(host)
        if recent is None:
            newest = await self._stored.newest(host) if self._stored is not None else None
            recent = self._hosts[host] = RecentTimestamps(newest, self._window)
        fresh: list[Sample] = []
        seen: set[int] = set()
        unsure: list[Sample] = []
        for sample in sorted(samples, key=lambda s: s.timestamp_ms):
            ts = sample.timestamp_ms
            if ts in seen or ts in recent:
                continue
            seen.add(ts)
            if recent.is_newer(ts):
                fresh.append(sample)
            else:
                unsure.append(sample)
        if unsure:
            stored: set[int] = set()
            if self._stored is not None:
                stored = await self._stored.present(host, unsure[0].timestamp_ms, unsure[-1].timestamp_ms)
            fresh = sorted(fresh + [s for s in unsure if s.timestamp_ms not in stored], key=lambda s: s.timestamp_ms)
        return fresh

    async def _durable(self) -> None:
        # Store.flush shares a write already in flight, which may have started
        # before these rows were queued; the second call covers them.
        await self._flush()
        await self._flush()
