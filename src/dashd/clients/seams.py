"""The narrow interfaces between client sessions and the rest of the daemon.

dashd.tap.build_daemon builds each consumer's context from these and hands it
over; nothing here imports a protocol or a database driver. A session gets a
SessionContext (its hub attachment, the connection registry, timers, limits,
and the RouterContext its message router uses); the router gets only the
catalogue, history, rule book, notifications, audit and registry it uses.
Tests build the same contexts from small fakes (see tests/test_security.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Hashable, Iterator, Mapping, Protocol, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from dashd.auth.handshake import TokenCheck
from dashd.collect.collector import MetricInfo
from dashd.settings import Settings

if TYPE_CHECKING:
    from dashd.clients.history import HistoryQueries
    from dashd.clients.processes import ProcessRequests
    from dashd.clients.queries import QueryCost
    from dashd.clients.session import ClientSession
    from dashd.store.reads import NotificationReads
    from dashd.stream.hub import ResumeResult
    from dashd.stream.streams import ClientStream


class StreamAttachment(Protocol):
    """The hub as a session sees it: attach its stream, replay, the last seq."""

    @property
    def seq(self) -> int: ...

    def attach(self, stream: ClientStream) -> None: ...

    def detach(self, stream: ClientStream) -> None: ...

    def send_latest(self, stream: ClientStream) -> None: ...

    async def resume(
        self,
        stream: ClientStream,
        after_seq: int,
        backfill: Callable[[int, int], Any] | None,
        limit: int,
        correlation_id: Any = None,
    ) -> ResumeResult: ...


class SessionRegistry(Protocol):
    """Who is connected (dashd.clients.connections.ConnectionManager)."""

    def admit(self, address: str) -> None: ...

    def add(self, session: ClientSession) -> None: ...

    def remove(self, session: ClientSession) -> None: ...

    def get(self, session_id: str) -> ClientSession | None: ...

    def __iter__(self) -> Iterator[ClientSession]: ...

    def __len__(self) -> int: ...


class SamplingControl(Protocol):
    """The local collector's period (dashd.collect.collector.CollectorService)."""

    @property
    def interval(self) -> float: ...

    def set_interval(self, interval: float) -> None: ...


class FixedSampling:
    """SamplingControl of a daemon part that has no collector (tools, tests):
    the configured interval, changeable like the collector's."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def set_interval(self, interval: float) -> None:
        self.interval = interval


class QueryAdmission(Protocol):
    """The cost-checked query scheduler (dashd.clients.queries.QueryScheduler)."""

    def submit(self, owner: Hashable, user: str, cost: QueryCost, run: Callable[[], Any]) -> Deferred: ...

    def cancel_owner(self, owner: Hashable) -> None: ...


class ClientTelemetry(Protocol):
    """The counters sessions, routers and handshakes bump (dashd.ops.telemetry.Telemetry)."""

    def frame_received(self, kind: str | None, size: int) -> None: ...

    def frame_sent(self, kind: str | None, size: int) -> None: ...

    def auth_failed(self, reason: str) -> None: ...

    def rate_limited(self, abuse_close: bool) -> None: ...


class HistorySource(Protocol):
    """Stored data a client may read (dashd.store.database.Store)."""

    async def history(
        self, host: str, metrics: Sequence[str], from_ms: int, to_ms: int, max_points: int, raw_resolution_ms: int
    ) -> Any: ...

    async def stats(self, host: str, metrics: Sequence[str], from_ms: int, to_ms: int) -> dict[str, dict]: ...

    async def read_stream(self, from_seq: int, to_seq: int) -> list: ...

    async def notifications(
        self, limit: int, unacknowledged: bool, *, from_ms: int | None = None, to_ms: int | None = None
    ) -> list[dict]: ...


class RuleStore(Protocol):
    """Where admin-made rules persist (dashd.store.database.Store)."""

    async def save_rule(self, name: str, spec: dict, by: str) -> None: ...

    async def delete_rule(self, name: str) -> None: ...


class RuleBook(Protocol):
    """The alert rules and what they see now (dashd.alerting.engine.RuleEngine)."""

    rules: dict

    def active_alerts(self) -> list: ...

    def firing_hosts(self, name: str) -> list[str]: ...

    def pending_hosts(self, name: str) -> list[str]: ...

    def set_rule(self, rule: Any) -> None: ...

    def delete_rule(self, name: str) -> None: ...


class NotificationDesk(Protocol):
    """Raising, finding and acknowledging notifications (dashd.alerting.engine.NotificationCenter)."""

    def raise_notification(
        self,
        level: str,
        title: str,
        message: str,
        source: str,
        state: str | None = None,
        alert: Mapping[str, Any] | None = None,
    ) -> dict: ...

    async def find(self, notification_id: str) -> dict | None: ...

    async def acknowledge(self, notification_id: str, user: str) -> dict: ...

    def recent(self, limit: int, unacknowledged: bool) -> list[dict]: ...


class AuditTrail(Protocol):
    """Records admin actions (dashd.auth.audit.AuditLog)."""

    def record(self, actor: str, action: str, detail: dict, peer: str | None) -> Deferred: ...


class MetricCatalogue:
    """The metrics clients may ask for: this host's described ones (`info`,
    sent in connection_ack and /api/catalogue), every name the hub has
    seen, other hosts' included (`names()`), the labelled series families
    with their label values (`families()`, dashd.stream.catalogue) and the
    series the store holds for a host (`stored_names(host)`)."""

    def __init__(
        self,
        info: tuple[MetricInfo, ...],
        host: str,
        known_names: Callable[[], tuple[str, ...]],
        families: Callable[[], list[dict]] = lambda: [],
        stored_names: Callable[[str], list[str]] = lambda host: [],
    ) -> None:
        self.info = info
        self.host = host
        self._known_names = known_names
        self._families = families
        self._stored_names = stored_names

    def names(self) -> tuple[str, ...]:
        return self._known_names()

    def families(self) -> list[dict]:
        return self._families()

    def stored_names(self, host: str) -> list[str]:
        return self._stored_names(host)


@dataclass(frozen=True)
class RouterContext:
    """What dashd.clients.router.MessageRouter uses, and nothing else."""

    settings: Settings
    wall_clock_ms: Callable[[], int]
    tokens: TokenCheck
    catalogue: MetricCatalogue
    sampling: SamplingControl
    history: HistoryQueries
    stream: StreamAttachment
    stored: HistorySource
    reads: NotificationReads
    notifications: NotificationDesk
    rules: RuleBook
    rule_store: RuleStore
    audit: AuditTrail
    registry: SessionRegistry
    queries: QueryAdmission | None = None
    telemetry: ClientTelemetry | None = None
    processes: ProcessRequests | None = None  # the process table and its look-back (None: not on this node)


@dataclass(frozen=True)
class SessionContext:
    """What one dashd.clients.session.ClientSession uses: built once by
    dashd.tap and shared by every session."""

    settings: Settings
    clock: IReactorTime
    wall_clock_ms: Callable[[], int]
    hub: StreamAttachment
    registry: SessionRegistry
    sampling: SamplingControl
    catalogue: MetricCatalogue
    tokens: TokenCheck
    router: RouterContext
    queries: QueryAdmission | None = None
    telemetry: ClientTelemetry | None = None
    # Called with each session once it is gone (telemetry's stream totals).
    closed_observers: tuple[Callable[[ClientSession], None], ...] = ()
