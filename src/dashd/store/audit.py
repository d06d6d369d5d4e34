"""The audit log table (`audit_log`): who did what, when, from where."""

from __future__ import annotations

from typing import Any, Protocol, Sequence


class SqlRunner(Protocol):
    """A store's generic statement runner (Store, or its SystemQueries)."""

    async def execute(self, query: str, params: Sequence[Any] = ...) -> int: ...

    async def fetchall(self, query: str, params: Sequence[Any] = ...) -> list[tuple[Any, ...]]: ...


class AuditRecords:
    """Rows of `audit_log`, on the store's pool."""

    def __init__(self, runner: SqlRunner) -> None:
        self._runner = runner

    async def append(self, ts_ms: int, actor: str, action: str, detail_json: str, peer: str | None) -> None:
        await self._runner.execute(
            "INSERT INTO audit_log (ts_ms, actor, action, detail, peer) VALUES (?, ?, ?, ?, ?)",
            (ts_ms, actor, action, detail_json, peer),
        )
