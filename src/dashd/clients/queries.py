"""Admission and scheduling of the store queries clients ask for (`history`
and `stats`, over WebSocket and HTTP): what keeps one viewer from jamming
the store (issue 11 A; docs/security.md, "Query budget").

Every query gets a cost before it reaches the store: the rows it will read
(series x span / resolution of the tier it reads: raw samples, 1-minute or
1-hour buckets) plus the points it returns (series x points).
A query is refused, never queued without bound:

- `too_large` when its cost is above `query_max_cost`;
- `rate_limited` when its connection already has PER_CONNECTION queries
  queued or running, when its user has spent their budget
  (`query_user_cost_per_second`, all their connections together), or when
  `query_concurrency` queries run and `query_queue` wait daemon-wide.

Admitted queries run at most `query_concurrency` at a time, in arrival
order. A connection that goes away cancels its query: taken out of the
queue before it starts, or cancelled while it runs (the store interrupts
the statement; see Store._run).

No I/O here: the clock is injected, the store call is a callable.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dashd.errors import ProtocolError

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
MAX_TRACKED_USERS = 10_000
# Queries one connection may have queued or running: two, so a dashboard
# refilling a gap while it loads its window is not refused.
PER_CONNECTION = 2
BUSY_RETRY_AFTER = 1.0  # seconds: what a refused client is told when the queue is full


@dataclass(frozen=True)
class QueryCost:
    """The estimated work of one query, in rows."""

    rows: int  # rows the store reads
    points: int  # points (buckets, summaries) the reply carries

    @property
    def total(self) -> int:
        return self.rows + self.points


def history_cost(series: int, span_ms: int, max_points: int, resolution_ms: int) -> QueryCost:
    """A downsampled history query: each series reads one row per
    `resolution_ms` of the span (the tier's: the collection interval, a
    minute or an hour) - or per bucket of the coarser tier the store reads
    when the reply's buckets are wider than that tier's (Store.tier_for: a
    30-day range at 500 points reads hours) - and returns at most
    `max_points` buckets."""
    bucket_ms = math.ceil(span_ms / max(1, max_points))
    read_ms = max(resolution_ms, HOUR_MS if bucket_ms > HOUR_MS else MINUTE_MS if bucket_ms > MINUTE_MS else 1)
    rows_per_series = max(1, math.ceil(span_ms / max(1, read_ms)))
    return QueryCost(series * rows_per_series, series * min(max_points, rows_per_series))


def stats_cost(
    series: int, window_ms: int, resolution_ms: int, raw_ms: int | None = None, rollup_ms: int | None = None
) -> QueryCost:
    """A stats query reads every raw row of the part of the window within
    raw retention (`raw_ms`; all of it when not given), a 1-minute bucket
    per minute of the part within the 1-minute retention (`rollup_ms`) and
    an hourly bucket per hour before that; one summary per series."""
    raw_part = min(window_ms, window_ms if raw_ms is None else raw_ms)
    minute_part = max(0, min(window_ms, window_ms if rollup_ms is None else rollup_ms) - raw_part)
    hour_part = max(0, window_ms - raw_part - minute_part)
    rows = (
        math.ceil(raw_part / max(1, resolution_ms))
        + math.ceil(minute_part / MINUTE_MS)
        + math.ceil(hour_part / HOUR_MS)
    )
    return QueryCost(series * max(1, rows), series)


class CostBucket:
    """A token bucket counted in cost units rather than messages."""

    __slots__ = ("rate", "burst", "_tokens", "_updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)

    def take(self, amount: float, now: float) -> bool:
        self._refill(now)
        if self._tokens >= amount:
            self._tokens -= amount
            return True
        return False

    def retry_after(self, amount: float) -> float:
        return max(0.0, (min(amount, self.burst) - self._tokens) / self.rate)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self._tokens >= self.burst


class _Job:
    __slots__ = ("owner", "cost", "run", "result", "running")

    def __init__(self, owner: Hashable, cost: QueryCost, run: Callable[[], Any]) -> None:
        self.owner = owner
        self.cost = cost
        self.run = run
        self.result: Deferred = Deferred()
        self.running: Deferred | None = None


@dataclass
class QueryStats:
    """Counters for the telemetry."""

    admitted: int = 0
    cancelled: int = 0
    refused_too_large: int = 0
    refused_in_flight: int = 0
    refused_user_budget: int = 0
    refused_busy: int = 0


class QueryScheduler:
    """Cost-based admission and bounded concurrency for client queries."""

    log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        *,
        concurrency: int,
        max_waiting: int,
        max_cost: int,
        user_cost_per_second: float,
        user_burst: float | None = None,
        on_refused: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.clock = clock
        # Told the reason of each refusal (too_large, in_flight, user_budget,
        # busy): the telemetry counts them.
        self.on_refused = on_refused
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self.max_cost = max_cost
        self.user_cost_per_second = user_cost_per_second
        # A user may always spend one maximal query, and then their rate.
        self.user_burst = user_burst if user_burst is not None else max(float(max_cost), user_cost_per_second)
        self.stats = QueryStats()
        self._waiting: deque[_Job] = deque()
        self._running: set[_Job] = set()
        self._by_owner: dict[Hashable, list[_Job]] = {}
        self._users: OrderedDict[str, CostBucket] = OrderedDict()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def submit(self, owner: Hashable, user: str, cost: QueryCost, run: Callable[[], Any]) -> Deferred:
        """Admit a query or raise ProtocolError (too_large / rate_limited).
        `run` starts the store call and returns a Deferred (cancellable);
        the returned Deferred fires with its result."""
        self._admit(owner, user, cost)
        job = _Job(owner, cost, run)
        self._by_owner.setdefault(owner, []).append(job)
        self.stats.admitted += 1
        if len(self._running) < self.concurrency:
            self._start(job)
        else:
            self._waiting.append(job)
        return job.result

    def _admit(self, owner: Hashable, user: str, cost: QueryCost) -> None:
        if cost.total > self.max_cost:
            self.stats.refused_too_large += 1
            self.on_refused("too_large")
            raise ProtocolError(
                "too_large",
                f"this query would read about {cost.total:,} rows; the most one query "
                f"may cost is {self.max_cost:,}: ask for fewer metrics, a shorter range or fewer "
                "points",
                {"cost": cost.total, "max_cost": self.max_cost},
            )
        if len(self._by_owner.get(owner, ())) >= PER_CONNECTION:
            self.stats.refused_in_flight += 1
            self.on_refused("in_flight")
            raise ProtocolError(
                "rate_limited",
                f"at most {PER_CONNECTION} history or stats requests at a time per connection: wait for a reply",
                {"in_flight": PER_CONNECTION},
            )
        if len(self._running) >= self.concurrency and len(self._waiting) >= self.max_waiting:
            self.stats.refused_busy += 1
            self.on_refused("busy")
            raise ProtocolError(
                "rate_limited",
                "the store is busy with other queries; try again shortly",
                {"retry_after": BUSY_RETRY_AFTER},
            )
        now = self.clock.seconds()
        bucket = self._bucket(user, now)
        if not bucket.take(cost.total, now):
            self.stats.refused_user_budget += 1
            self.on_refused("user_budget")
            raise ProtocolError(
                "rate_limited",
                "query budget spent: your queries read too much; slow down",
                {"retry_after": round(bucket.retry_after(cost.total), 3)},
            )

    def _bucket(self, user: str, now: float) -> CostBucket:
        bucket = self._users.get(user)
        if bucket is None:
            bucket = self._users[user] = CostBucket(self.user_cost_per_second, self.user_burst, now)
            # Bounded: forget refilled (idle) users first, oldest first.
            while len(self._users) > MAX_TRACKED_USERS:
                oldest, oldest_bucket = next(iter(self._users.items()))
                if not oldest_bucket.full(now) and oldest != user:
                    self._users.move_to_end(oldest)
                    break
                del self._users[oldest]
        else:
            self._users.move_to_end(user)
        return bucket

    def _start(self, job: _Job) -> None:
        self._running.add(job)
        job.running = maybeDeferred(job.run)
        job.running.addBoth(self._finished, job)

    def _finished(self, result: Any, job: _Job) -> None:
        self._running.discard(job)
        jobs = self._by_owner.get(job.owner)
        if jobs is not None and job in jobs:
            jobs.remove(job)
            if not jobs:
                del self._by_owner[job.owner]
        if not job.result.called:
            job.result.callback(result)
        # else: cancelled, the owner went away; nobody waits for this result.
        while self._waiting and len(self._running) < self.concurrency:
            self._start(self._waiting.popleft())

    def cancel_owner(self, owner: Hashable) -> None:
        """The connection (or HTTP request) went away: drop its query if it
        has not started, cancel it if it runs."""
        jobs = self._by_owner.pop(owner, [])
        # The queued ones first: cancelling a running one starts the next in line.
        for job in sorted(jobs, key=lambda job: job.running is not None):
            self.stats.cancelled += 1
            if job.running is None:
                try:
                    self._waiting.remove(job)
                except ValueError:
                    pass
                job.result.errback(CancelledError("the client went away before the query started"))
            else:
                job.result.errback(CancelledError("the client went away"))
                job.running.cancel()
