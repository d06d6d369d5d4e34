"""Admin actions on record: every rule change, broadcast, interval change,
disconnect and alerting change, by whom and from where (docs/security.md)."""

from __future__ import annotations

import json
from typing import Callable, Protocol

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from dashd.timefmt import now_ms

log = Logger()


class AuditRows(Protocol):
    """Where audit entries are kept (dashd.store.audit.AuditRecords)."""

    async def append(self, ts_ms: int, actor: str, action: str, detail_json: str, peer: str | None) -> None: ...


class AuditLog:
    """Logs an admin action and writes it to the store (failures logged, never raised)."""

    def __init__(self, rows: AuditRows, wall_clock_ms: Callable[[], int] = now_ms) -> None:
        self._rows = rows
        self._now = wall_clock_ms

    def record(self, actor: str, action: str, detail: dict, peer: str | None) -> Deferred:
        """Record an admin action (who, what, when, from where)."""
        log.info("audit: {actor} {action} {detail} from {peer}", actor=actor, action=action, detail=detail, peer=peer)
        d = Deferred.fromCoroutine(
            self._rows.append(self._now(), actor, action, json.dumps(detail, sort_keys=True), peer)
        )
        d.addErrback(lambda f: log.failure("could not write the audit log", f))
        return d
