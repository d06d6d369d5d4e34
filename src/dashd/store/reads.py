"""Per-user notification read state (issue 16, migration 0005).

Each user has read marks: single notifications (`notification_reads`) and a
"read through" time (`notification_read_marks`) that "mark all read" moves
forward, so a user's unread count survives a reload and is the same in every
browser. Acknowledgement stays global (NotificationCenter); reading is per user.

Queries go through the store's public `execute`/`fetchall`/`flush`, so they
run on the adbapi pool, never on the reactor thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from dashd.timefmt import iso_ms, parse_time


class ReadStore(Protocol):
    """What the read state needs from the store."""

    async def execute(self, query: str, params: Sequence[Any] = ...) -> int: ...
    async def fetchall(self, query: str, params: Sequence[Any] = ...) -> list[tuple[Any, ...]]: ...
    def flush(self) -> Any: ...


# Notifications that still ask for an acknowledgement: warnings and criticals
# that nobody acknowledged and that are not "back to normal" messages.
NEEDS_ACK = "acknowledged_by IS NULL AND level <> 'info' AND (state IS NULL OR state <> 'resolved')"


@dataclass(frozen=True)
class ReadCounts:
    unread: int
    unacknowledged: int
    read_through_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "unread": self.unread,
            "unacknowledged": self.unacknowledged,
            "read_through": iso_ms(self.read_through_ms) if self.read_through_ms is not None else None,
        }


class NotificationReads:
    """Reads and writes one user's read marks."""

    def __init__(self, store: ReadStore) -> None:
        self._store = store

    async def read_through(self, user: str) -> int | None:
        rows = await self._store.fetchall(
            "SELECT read_through_ms FROM notification_read_marks WHERE username = ?", (user,)
        )
        return int(rows[0][0]) if rows else None

    async def read_ids(self, user: str, ids: Sequence[str]) -> set[str]:
        """Which of `ids` the user marked read one by one."""
        if not ids:
            return set()
        marks = ", ".join("?" for _ in ids)
        rows = await self._store.fetchall(
            f"SELECT notification_id FROM notification_reads WHERE username = ? AND notification_id IN ({marks})",
            (user, *ids),
        )
        return {row[0] for row in rows}

    async def annotate(self, user: str, notifications: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each notification with `read` (for this user) added."""
        through = await self.read_through(user)
        read = await self.read_ids(user, [n["id"] for n in notifications])
        out = []
        for n in notifications:
            at = _epoch_ms(n.get("timestamp"))
            is_read = n["id"] in read or (through is not None and at is not None and at <= through)
            out.append(dict(n, read=is_read))
        return out

    async def counts(self, user: str) -> ReadCounts:
        await self._store.flush()
        through = await self.read_through(user)
        unread = await self._store.fetchall(
            "SELECT COUNT(*) FROM notifications n WHERE n.ts_ms > ? AND NOT EXISTS "
            "(SELECT 1 FROM notification_reads r WHERE r.username = ? AND r.notification_id = n.id)",
            (through if through is not None else -1, user),
        )
        open_ = await self._store.fetchall(f"SELECT COUNT(*) FROM notifications WHERE {NEEDS_ACK}")
        return ReadCounts(int(unread[0][0]), int(open_[0][0]), through)

    async def known(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are stored notifications."""
        if not ids:
            return set()
        await self._store.flush()
        marks = ", ".join("?" for _ in ids)
        rows = await self._store.fetchall(f"SELECT id FROM notifications WHERE id IN ({marks})", tuple(ids))
        return {row[0] for row in rows}

    async def mark(self, user: str, ids: Sequence[str], now_ms: int) -> None:
        if not ids:
            return
        values = ", ".join("(?, ?, ?)" for _ in ids)
        params: list[Any] = []
        for notification_id in ids:
            params += [user, notification_id, now_ms]
        await self._store.execute(
            f"REPLACE INTO notification_reads (username, notification_id, read_at_ms) VALUES {values}", params
        )

    async def mark_all(self, user: str, now_ms: int) -> None:
        """Everything up to now is read; single marks before it are redundant."""
        await self._store.execute(
            "REPLACE INTO notification_read_marks (username, read_through_ms) VALUES (?, ?)", (user, now_ms)
        )
        await self._store.execute(
            "DELETE FROM notification_reads WHERE username = ? AND read_at_ms <= ?", (user, now_ms)
        )


def _epoch_ms(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_time(value, 0)
    except (ValueError, OverflowError, OSError):
        return None
