"""Small fakes of the interfaces the domain core and the protocol use, and
the helpers the loopback tests share: one copy of each.

- `RecordingSink`: a ClientSink (what a protocol is to a ClientStream).
- `FakeStore`: the store as the hub (StreamSink, backfill), the router
  (history, stats, notifications, rules) and the NotificationCenter see it,
  answering at once from memory.
- `memory_core`: the daemon's parts around a FakeStore, an InMemoryBus and a
  task.Clock, as dashd.tap builds them for real (no threads, no sockets).
- `sleep` / `authed`: real-reactor helpers for the loopback tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from dashd.stream.streams import OutboundFrame, StreamMessage


class RecordingSink:
    """A ClientSink that records what the stream wrote and how it closed."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock
        self.frames: list[OutboundFrame] = []
        self.sent_at: list[float] = []  # clock time of each frame (with a clock)
        self.closed: list[tuple[int, str]] = []

    def send_frame(self, frame: OutboundFrame) -> None:
        self.frames.append(frame)
        if self.clock is not None:
            self.sent_at.append(self.clock.seconds())

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))

    @property
    def payloads(self) -> list[bytes]:
        return [frame.payload for frame in self.frames]

    @property
    def messages(self) -> list[dict]:
        return [json.loads(frame.payload) for frame in self.frames]

    @property
    def close_code(self) -> int | None:
        """The code of the last close, None while open."""
        return self.closed[-1][0] if self.closed else None

    def types_and_seqs(self) -> list[tuple[str, int | None]]:
        return [(m["type"], m.get("seq")) for m in self.messages]


class FakeStore:
    """The store, answering at once from memory.

    As the hub's StreamSink it records every sequenced message and reads
    them back as read_stream/backfill would, except the seqs it `lost`;
    `gate`, when set, holds reads until it fires. As the router's and the
    NotificationCenter's store it has empty history, no rules and the
    `notifications` it was given; `history_error`, when set, is raised by
    history and stats, `notifications_error` by notifications (a store that
    is down)."""

    pending_rows = 0

    def __init__(self, notifications: dict[str, dict] | None = None) -> None:
        self.recorded: dict[int, StreamMessage] = {}
        self.lost: set[int] = set()
        self.reads: list[tuple[int, int]] = []
        self.gate: Deferred | None = None
        self.notifications_by_id: dict[str, dict] = dict(notifications or {})
        self.history_error: Exception | None = None
        self.history_calls: list[tuple] = []
        self.notifications_error: Exception | None = None

    # ----- StreamSink and the resume path

    def record(self, message: StreamMessage) -> None:
        self.recorded[message.seq] = message

    async def backfill(self, from_seq: int, to_seq: int) -> list[StreamMessage]:
        self.reads.append((from_seq, to_seq))
        if self.gate is not None:
            await self.gate
        return [m for seq, m in sorted(self.recorded.items()) if from_seq <= seq <= to_seq and seq not in self.lost]

    async def read_stream(self, from_seq: int, to_seq: int) -> list[StreamMessage]:
        return await self.backfill(from_seq, to_seq)

    # ----- queries

    async def history(self, host, metrics, from_ms, to_ms, max_points, raw_resolution_ms):
        from dashd.store.database import HistorySeries

        self.history_calls.append((host, tuple(metrics), from_ms, to_ms, max_points))
        if self.history_error is not None:
            raise self.history_error
        return HistorySeries("raw", raw_resolution_ms, {name: [] for name in metrics})

    async def stats(self, host, metrics, from_ms, to_ms):
        from dashd.store.analytics import summarize

        if self.history_error is not None:
            raise self.history_error
        return {name: summarize([]) for name in metrics}

    # ----- notifications and rules

    async def notifications(self, limit, unacknowledged, *, from_ms=None, to_ms=None):
        if self.notifications_error is not None:
            raise self.notifications_error
        return list(self.notifications_by_id.values())[:limit]

    async def notification(self, notification_id: str) -> dict | None:
        return self.notifications_by_id.get(notification_id)

    async def save_rule(self, name, spec, by):
        return None

    async def delete_rule(self, name):
        return None

    async def execute(self, query, params=()):
        return 0

    async def fetchall(self, query, params=()):
        return []


@dataclass
class MemoryDaemon:
    """The parts dashd.tap.build_daemon wires for client sessions, around a
    FakeStore, an InMemoryBus and a task.Clock: no sockets, no database."""

    settings: Any
    clock: Clock
    bus: Any
    hub: Any
    store: FakeStore
    tokens: Any  # the TokenIssuer (mint tokens with it)
    verifier: Any  # the TokenVerifier sessions check tokens with
    catalogue_info: Any
    connections: Any
    wall_clock_ms: Any
    context: Any  # dashd.clients.seams.SessionContext
    shutdown: Any

    def server_factory(self, endpoint: str) -> Any:
        from dashd.clients.session import SessionFactory
        from dashd.wire.protocol import DashboardServerFactory

        return DashboardServerFactory(
            SessionFactory(self.context), self.verifier, self.settings, self.clock, self.shutdown, endpoint
        )


def memory_core(
    clock: Clock | None = None, store: FakeStore | None = None, settings: Any = None, catalogue_size: int = 2
) -> MemoryDaemon:
    """A MemoryDaemon built as dashd.tap builds the real one."""
    from dashd.alerting.engine import DEFAULT_RULES, NotificationCenter, RuleEngine
    from dashd.auth.audit import AuditLog
    from dashd.auth.handshake import TokenVerifier
    from dashd.auth.revocations import RevocationList
    from dashd.auth.tokens import TokenIssuer
    from dashd.clients.connections import ConnectionManager
    from dashd.clients.history import HistoryQueries
    from dashd.clients.seams import FixedSampling, MetricCatalogue, RouterContext, SessionContext
    from dashd.collect.collector import build_catalogue
    from dashd.ops.shutdown import ShutdownHooks
    from dashd.settings import Settings
    from dashd.store.audit import AuditRecords
    from dashd.store.reads import NotificationReads
    from dashd.stream.bus import InMemoryBus
    from dashd.stream.hub import MemorySequence, StreamHub
    from dashd.timefmt import now_ms

    clock = clock if clock is not None else Clock()
    store = store if store is not None else FakeStore()
    settings = settings if settings is not None else Settings(host_name="memory")
    bus = InMemoryBus()
    # Wall time moves with the fake clock (token expiry is measured in it).
    started_ms = now_ms() - int(clock.seconds() * 1000)

    def wall_clock_ms() -> int:
        return started_ms + int(clock.seconds() * 1000)

    catalogue_info = build_catalogue(catalogue_size)
    names = tuple(info.name for info in catalogue_info)
    hub = StreamHub(bus, clock, MemorySequence(), 300, lambda: names)
    notifications = NotificationCenter(bus, store)
    rules = RuleEngine(notifications)
    rules.replace_rules(DEFAULT_RULES)
    issuer = TokenIssuer(b"k" * 64)
    verifier = TokenVerifier(issuer, RevocationList())
    catalogue = MetricCatalogue(catalogue_info, settings.host, hub.known_metrics)
    sampling = FixedSampling(settings.interval)
    connections = ConnectionManager(settings.max_connections, settings.max_connections_per_ip)
    router = RouterContext(
        settings=settings,
        wall_clock_ms=wall_clock_ms,
        tokens=verifier,
        catalogue=catalogue,
        sampling=sampling,
        history=HistoryQueries(settings, catalogue, sampling, store, wall_clock_ms),
        stream=hub,
        stored=store,
        reads=NotificationReads(store),
        notifications=notifications,
        rules=rules,
        rule_store=store,
        audit=AuditLog(AuditRecords(store), wall_clock_ms),
        registry=connections,
    )
    context = SessionContext(
        settings=settings,
        clock=clock,
        wall_clock_ms=wall_clock_ms,
        hub=hub,
        registry=connections,
        sampling=sampling,
        catalogue=catalogue,
        tokens=verifier,
        router=router,
    )
    return MemoryDaemon(
        settings=settings,
        clock=clock,
        bus=bus,
        hub=hub,
        store=store,
        tokens=issuer,
        verifier=verifier,
        catalogue_info=catalogue_info,
        connections=connections,
        wall_clock_ms=wall_clock_ms,
        context=context,
        shutdown=ShutdownHooks(),
    )


# --------------------------------------------------------------------------
# The loopback tests' helpers (the real reactor, a real daemon)


async def sleep(seconds: float) -> None:
    """A real wait on the reactor: only where a test needs real time to pass."""
    await deferLater(reactor, seconds, lambda: None)


async def authed(
    daemon,
    path: str = "/dashboard",
    role: str = "viewer",
    subject: str | None = None,
    token: str | None = None,
    **kwargs,
):
    """A wsclient connected to `daemon` and past its connection_ack."""
    from wsclient import connect

    client = await connect(daemon.url(path), token=token or daemon.token(role, subject=subject), **kwargs)
    ack = await client.recv()
    assert ack["type"] == "connection_ack", ack
    return client
