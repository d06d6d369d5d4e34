"""The daemon's parts as one plain object: what a client session and the HTTP
API talk to. Built by dashd.tap.makeService; tests build it with fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dashd.alerting.engine import NotificationCenter, RuleEngine
from dashd.auth.tokens import AuthError, Principal, TokenIssuer, check_endpoint
from dashd.collect.collector import MetricInfo
from dashd.clients.connections import ConnectionManager
from dashd.stream.hub import StreamHub
from dashd.settings import Settings
from dashd.timefmt import now_ms

log = Logger()


class RevocationList:
    """Login sessions that were revoked (logout, user disabled). Checked on
    every token use, in memory, so authentication never waits on the store."""

    def __init__(self) -> None:
        self._revoked_sessions: set[str] = set()
        self._disabled_users: set[str] = set()
        self._revoked_tokens: set[str] = set()  # ids of `dashd token` tokens (dashd token revoke)

    def revoke_session(self, session_id: str) -> None:
        self._revoked_sessions.add(session_id)

    def disable_user(self, name: str) -> None:
        self._disabled_users.add(name)

    def enable_user(self, name: str) -> None:
        self._disabled_users.discard(name)

    def replace(self, revoked_sessions: set[str], disabled_users: set[str],
                revoked_tokens: set[str] = frozenset()) -> bool:
        """Take the store's view; True when something new was revoked or disabled."""
        tightened = bool(revoked_sessions - self._revoked_sessions or disabled_users - self._disabled_users
                         or revoked_tokens - self._revoked_tokens)
        self._revoked_sessions = set(revoked_sessions) | self._revoked_sessions
        self._disabled_users = set(disabled_users)
        self._revoked_tokens = set(revoked_tokens) | self._revoked_tokens
        return tightened

    def check(self, principal: Principal) -> None:
        if principal.session_id and principal.session_id in self._revoked_sessions:
            raise AuthError("session revoked")
        if principal.subject in self._disabled_users:
            raise AuthError("user disabled")
        if principal.token_id and principal.token_id in self._revoked_tokens:
            raise AuthError("token revoked")


@dataclass
class Core:
    settings: Settings
    clock: IReactorTime
    hub: StreamHub
    store: Any  # dashd.store.database.Store (duck-typed so tests can pass a fake)
    tokens: TokenIssuer
    connections: ConnectionManager
    notifications: NotificationCenter
    rules: RuleEngine
    catalogue_info: tuple[MetricInfo, ...]
    collector: Any = None  # CollectorService: interval and set_interval
    bus: Any = None  # dashd.stream.bus.Bus: where producers (ingest, admin) publish
    telemetry: Any = None  # dashd.ops.telemetry.Telemetry or None
    queries: Any = None  # dashd.clients.queries.QueryScheduler: admission of history/stats queries (None: direct)
    processes: Any = None  # dashd.clients.processes.ProcessRequests (None: no process tables on this node)
    revocations: RevocationList = field(default_factory=RevocationList)
    prepared: bool = True  # False until the store answered and users, revocations and rules are loaded
    wall_clock_ms: Callable[[], int] = now_ms
    on_session_closed: list[Callable[[Any], None]] = field(default_factory=list)
    # Called when the daemon stops, before clients are closed (e.g. agents' /ingest connections).
    shutdown_hooks: list[Callable[[], None]] = field(default_factory=list)

    @property
    def catalogue(self) -> tuple[str, ...]:
        """Metric names clients may ask for: ours and other hosts'."""
        return self.hub.known_metrics()

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def interval(self) -> float:
        return self.collector.interval if self.collector is not None else self.settings.interval

    def verify_token(self, token: object, endpoint: str = "") -> Principal:
        """The principal of a valid, unrevoked token allowed on `endpoint`
        ('' for the WebSocket `auth` message and the HTTP API: anything but
        /ingest). Raises AuthError (EndpointForbidden for a role that may
        not go there)."""
        principal = self.tokens.verify(token)
        check_endpoint(principal, endpoint)
        self.revocations.check(principal)
        return principal

    def audit(self, actor: str, action: str, detail: dict, peer: str | None) -> Deferred:
        """Record an admin action (who, what, when, from where)."""
        log.info("audit: {actor} {action} {detail} from {peer}", actor=actor, action=action, detail=detail, peer=peer)
        d = Deferred.fromCoroutine(self.store.execute(
            "INSERT INTO audit_log (ts_ms, actor, action, detail, peer) VALUES (?, ?, ?, ?, ?)",
            (self.wall_clock_ms(), actor, action, json.dumps(detail, sort_keys=True), peer)))
        d.addErrback(lambda f: log.failure("could not write the audit log", f))
        return d
