"""The durable outbox: every notice is written to the store before it is
attempted; a poll loop leases due rows, delivers them, and records each
attempt. Failures retry with exponential back-off and jitter until the
notice is delivered or its time runs out (then it is dead-lettered). The
lease is a row-level claim in the shared database, so with several nodes
each notice is attempted by one node at a time, and a node that dies
mid-attempt leaves a lease that simply runs out."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from dashd.alerting.channels import DeliveryResult, Transport
from dashd.alerting.model import Notice
from dashd.store.alerting import AlertingStore, OutboxRow
from dashd.store.database import StoreUnavailable

SECOND = 1.0
MINUTE = 60 * SECOND
DAY = 24 * 60 * MINUTE


@dataclass(frozen=True)
class RetryPolicy:
    first: float = 5 * SECOND  # delay after the first failure
    maximum: float = 5 * MINUTE  # the delay never grows past this
    dead_after: float = DAY  # a notice not delivered by then is dead-lettered
    lease: float = 2 * MINUTE  # longer than any attempt can take
    keep: float = 7 * DAY  # finished deliveries stay in the log this long

    def delay(self, attempts: int, jitter: float) -> float:
        """Exponential back-off with jitter: base * 2^(n-1), capped, then
        scaled by a factor in [0.5, 1.5) so nodes do not retry in step."""
        base = min(self.maximum, self.first * 2.0 ** max(0, attempts - 1))
        return min(self.maximum, base * (0.5 + jitter))


class Outbox(Service):
    """Enqueue notices; deliver them from a poll loop on an injected clock."""

    log = Logger()

    def __init__(
        self,
        store: AlertingStore,
        transport_for: Callable[[str], Transport | None],
        clock: IReactorTime,
        node: str,
        policy: RetryPolicy = RetryPolicy(),
        poll_interval: float = 1.0,
        wall_clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        jitter: Callable[[], float] = random.random,
        batch: int = 20,
        on_attempt: Callable[[str, str], None] = lambda channel, status: None,
    ) -> None:
        self.store = store
        self.transport_for = transport_for
        self.clock = clock
        self.node = node
        self.policy = policy
        self.poll_interval = poll_interval
        self.wall_clock_ms = wall_clock_ms
        self.jitter = jitter
        self.batch = batch
        self.on_attempt = on_attempt  # (channel, new status) after each recorded attempt: telemetry
        self._loop: LoopingCall | None = None
        self._running: Deferred[None] | None = None
        self._again = False
        self._last_prune_ms = 0

    def startService(self) -> None:
        super().startService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        self._loop = LoopingCall(self.kick)
        self._loop.clock = self.clock
        self._loop.start(self.poll_interval, now=True).addErrback(lambda f: self.log.failure("outbox loop stopped", f))

    def stopService(self) -> Deferred[None] | None:
        super().stopService()  # type: ignore[no-untyped-call]  # Twisted's Service is untyped
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        # An attempt in flight keeps its lease; it is retried after a restart.
        return None

    async def enqueue(self, notice: Notice, deadline_ms: int | None = None) -> bool:
        now = self.wall_clock_ms()
        deadline = deadline_ms if deadline_ms is not None else now + int(self.policy.dead_after * 1000)
        written = await self.store.enqueue(
            notice.dedup_key, notice.channel, notice.group_key, notice.body, now, deadline
        )
        if written and self.running:
            self.kick()
        return written

    def kick(self) -> Deferred[None]:
        """Deliver what is due now; one pass at a time (a kick during a pass
        runs another pass after it). Never fails: errors are logged."""
        if self._running is not None:
            self._again = True
            return self._running
        self._running = Deferred.fromCoroutine(self._passes())
        self._running.addErrback(lambda f: self.log.failure("outbox pass failed", f))
        return self._running

    async def _passes(self) -> None:
        try:
            while True:
                self._again = False
                try:
                    delivered = await self.run_once()
                except StoreUnavailable as e:
                    self.log.warn(
                        "outbox: store unavailable ({error}); retrying", error=str(e).splitlines()[0] if str(e) else ""
                    )
                    break
                if not (self._again or delivered >= self.batch):
                    break
        finally:
            self._running = None

    async def run_once(self) -> int:
        """Claim due notices and attempt each once (concurrently); returns
        how many were attempted."""
        now = self.wall_clock_ms()
        await self._maybe_prune(now)
        rows = await self.store.claim_due(self.node, now, int(self.policy.lease * 1000), self.batch)
        if rows:
            await DeferredList([Deferred.fromCoroutine(self._attempt(row)) for row in rows], consumeErrors=True)
        return len(rows)

    async def _maybe_prune(self, now: int) -> None:
        if now - self._last_prune_ms < 10 * 60_000:
            return
        self._last_prune_ms = now
        await self.store.prune(now - int(self.policy.keep * 1000))

    async def _attempt(self, row: OutboxRow) -> None:
        started = self.wall_clock_ms()
        transport = self.transport_for(row.channel)
        if transport is None:
            result = DeliveryResult(False, f"channel {row.channel} does not exist (any more)", permanent=True)
        else:
            try:
                result = await transport.send(row.body)
            except Exception as e:  # a transport must not fail, but if it does, log it as the reason
                self.log.failure("transport {channel} failed", channel=row.channel)
                result = DeliveryResult(False, f"internal error: {type(e).__name__}")
        now = self.wall_clock_ms()
        attempts = row.attempts + 1
        if result.ok:
            status, next_ms, error = "delivered", now, None
        elif result.permanent or now >= row.deadline_ms:
            status, next_ms, error = "dead", now, result.detail
        else:
            status, error = "pending", result.detail
            next_ms = now + int(self.policy.delay(attempts, self.jitter()) * 1000)
            next_ms = min(next_ms, max(now, row.deadline_ms))  # one last try at the deadline
        try:
            await self.store.settle(
                row.id, self.node, status, attempts, next_ms, error, now, result.ok, result.detail, now - started
            )
        except StoreUnavailable:
            # The receiver has it (or not); the lease runs out and the row is
            # tried again: at-least-once across a database outage.
            self.log.warn(
                "outbox: could not record delivery {id} ({channel}); it will be retried", id=row.id, channel=row.channel
            )
            return
        level = self.log.info if result.ok else self.log.warn
        level(
            "alert delivery {id} to {channel}: {status} after {attempts} attempt(s): {detail}",
            id=row.id,
            channel=row.channel,
            status=status,
            attempts=attempts,
            detail=result.detail,
        )
        self.on_attempt(row.channel, status)

    async def counts(self) -> dict[str, Any]:
        return await self.store.counts()
