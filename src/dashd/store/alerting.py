"""The alerting tables (migration 0004): API-managed channels, silences,
the delivery outbox with its attempts, and the alert timeline. Each method
is one transaction through Store.interaction, so nothing blocks the
reactor. Claims are single-row conditional UPDATEs, atomic on SQLite and
MySQL alike: that is how several dashd nodes sharing one database deliver
each notice once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

LOG_ATTEMPTS = 10  # attempts shown per delivery in the log


@dataclass(frozen=True)
class OutboxRow:
    id: int
    dedup_key: str
    channel: str
    group_key: str
    status: str
    body: dict[str, Any]
    created_at_ms: int
    deadline_ms: int
    attempts: int


class AlertingStore:
    def __init__(self, store: Any) -> None:
        self.store = store

    @property
    def _sql(self) -> Callable[[str], str]:
        sql: Callable[[str], str] = self.store.dialect.sql
        return sql

    def _insert_ignore(self) -> str:
        return "INSERT IGNORE" if self.store.dialect.name == "mysql" else "INSERT OR IGNORE"

    # ----- channels

    async def channels(self) -> dict[str, dict[str, Any]]:
        rows = await self.store.fetchall("SELECT name, spec FROM alert_channels ORDER BY name")
        return {name: json.loads(spec) for name, spec in rows}

    async def save_channel(self, name: str, kind: str, spec: dict[str, Any], by: str, now_ms: int) -> None:
        await self.store.execute(
            "REPLACE INTO alert_channels (name, kind, spec, updated_by, updated_at_ms) VALUES (?, ?, ?, ?, ?)",
            (name, kind, json.dumps(spec), by, now_ms),
        )

    async def delete_channel(self, name: str) -> int:
        deleted: int = await self.store.execute("DELETE FROM alert_channels WHERE name = ?", (name,))
        return deleted

    # ----- silences

    async def silences(self, since_ms: int) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT id, matchers, starts_at_ms, ends_at_ms, comment, created_by, created_at_ms, expired_by "
            "FROM alert_silences WHERE ends_at_ms >= ? ORDER BY starts_at_ms",
            (since_ms,),
        )
        return [
            {
                "id": r[0],
                "matchers": json.loads(r[1]),
                "starts_at_ms": r[2],
                "ends_at_ms": r[3],
                "comment": r[4],
                "created_by": r[5],
                "created_at_ms": r[6],
                "expired_by": r[7],
            }
            for r in rows
        ]

    async def add_silence(self, silence: dict[str, Any]) -> None:
        await self.store.execute(
            "INSERT INTO alert_silences (id, matchers, starts_at_ms, ends_at_ms, comment, created_by, created_at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                silence["id"],
                json.dumps(silence["matchers"]),
                silence["starts_at_ms"],
                silence["ends_at_ms"],
                silence["comment"],
                silence["created_by"],
                silence["created_at_ms"],
            ),
        )

    async def expire_silence(self, silence_id: str, by: str, now_ms: int) -> int:
        """End a silence now (kept for the record)."""
        expired: int = await self.store.execute(
            "UPDATE alert_silences SET ends_at_ms = ?, expired_by = ? WHERE id = ? AND ends_at_ms > ?",
            (now_ms, by, silence_id, now_ms),
        )
        return expired

    # ----- timeline

    async def record_event(
        self,
        event_key: str,
        fingerprint: str,
        ts_ms: int,
        state: str,
        level: str,
        labels: dict[str, Any],
        summary: str,
        silenced_by: str | None,
        node: str,
    ) -> bool:
        """True when this node recorded the event first (so it delivers it)."""
        return bool(
            await self.store.execute(
                f"{self._insert_ignore()} INTO alert_events (event_key, fingerprint, ts_ms, state, level, labels, summary, "
                f"silenced_by, node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event_key,
                    fingerprint,
                    ts_ms,
                    state,
                    level,
                    json.dumps(labels, sort_keys=True),
                    summary,
                    silenced_by,
                    node,
                ),
            )
        )

    async def timeline(self, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.store.fetchall(
            "SELECT event_key, fingerprint, ts_ms, state, level, labels, summary, silenced_by FROM alert_events "
            "WHERE ts_ms >= ? AND ts_ms <= ? ORDER BY ts_ms DESC LIMIT ?",
            (from_ms, to_ms, limit),
        )
        return [
            {
                "event_key": r[0],
                "fingerprint": r[1],
                "ts_ms": r[2],
                "state": r[3],
                "level": r[4],
                "labels": json.loads(r[5]),
                "summary": r[6],
                "silenced_by": r[7],
            }
            for r in rows
        ]

    # ----- outbox

    async def enqueue(
        self, dedup_key: str, channel: str, group_key: str, body: dict[str, Any], now_ms: int, deadline_ms: int
    ) -> bool:
        """Write a pending delivery; False when another node (or an earlier
        run) already wrote the same one."""
        return bool(
            await self.store.execute(
                f"{self._insert_ignore()} INTO alert_outbox (dedup_key, channel, group_key, status, payload, created_at_ms, "
                f"deadline_ms, next_attempt_ms, attempts) VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, 0)",
                (dedup_key, channel, group_key[:512], json.dumps(body), now_ms, deadline_ms, now_ms),
            )
        )

    async def claim_due(self, node: str, now_ms: int, lease_ms: int, limit: int) -> list[OutboxRow]:
        """Lease up to `limit` due deliveries to this node. A row whose lease
        ran out (its node died mid-attempt) is due again."""
        sql = self._sql

        def work(cursor: Any) -> list[OutboxRow]:
            cursor.execute(
                sql(
                    "SELECT id FROM alert_outbox WHERE status = 'pending' AND next_attempt_ms <= ? "
                    "AND (lease_until_ms IS NULL OR lease_until_ms < ?) ORDER BY next_attempt_ms, id LIMIT ?"
                ),
                (now_ms, now_ms, limit),
            )
            claimed = []
            for (row_id,) in cursor.fetchall():
                cursor.execute(
                    sql(
                        "UPDATE alert_outbox SET lease_owner = ?, lease_until_ms = ? WHERE id = ? AND status = 'pending' "
                        "AND (lease_until_ms IS NULL OR lease_until_ms < ?)"
                    ),
                    (node, now_ms + lease_ms, row_id, now_ms),
                )
                if cursor.rowcount == 1:
                    claimed.append(row_id)
            rows = []
            for row_id in claimed:
                cursor.execute(
                    sql(
                        "SELECT id, dedup_key, channel, group_key, status, payload, created_at_ms, deadline_ms, attempts "
                        "FROM alert_outbox WHERE id = ?"
                    ),
                    (row_id,),
                )
                r = cursor.fetchone()
                rows.append(OutboxRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]))
            return rows

        claimed_rows: list[OutboxRow] = await self.store.interaction(work)
        return claimed_rows

    async def settle(
        self,
        row_id: int,
        node: str,
        status: str,
        attempts: int,
        next_attempt_ms: int,
        last_error: str | None,
        now_ms: int,
        ok: bool,
        detail: str,
        duration_ms: int,
    ) -> bool:
        """Record one attempt and the delivery's new state, if this node
        still holds the lease."""
        sql = self._sql
        finished = now_ms if status in ("delivered", "dead") else None

        def work(cursor: Any) -> bool:
            cursor.execute(
                sql(
                    "UPDATE alert_outbox SET status = ?, attempts = ?, next_attempt_ms = ?, last_error = ?, "
                    "finished_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL WHERE id = ? AND lease_owner = ?"
                ),
                (status, attempts, next_attempt_ms, last_error, finished, row_id, node),
            )
            held: bool = cursor.rowcount == 1
            cursor.execute(
                sql(
                    "INSERT INTO alert_attempts (outbox_id, ts_ms, node, ok, detail, duration_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (row_id, now_ms, node, 1 if ok else 0, detail, duration_ms),
            )
            return held

        held: bool = await self.store.interaction(work)
        return held

    async def counts(self) -> dict[str, int]:
        rows = await self.store.fetchall("SELECT status, COUNT(*) FROM alert_outbox GROUP BY status")
        return {status: int(count) for status, count in rows}

    async def deliveries(self, limit: int, status: str | None = None) -> list[dict[str, Any]]:
        sql = self._sql

        def work(cursor: Any) -> list[dict[str, Any]]:
            where = "WHERE status = ? " if status else ""
            cursor.execute(
                sql(
                    f"SELECT id, channel, group_key, status, payload, created_at_ms, attempts, last_error, finished_at_ms, "
                    f"next_attempt_ms FROM alert_outbox {where}ORDER BY id DESC LIMIT ?"
                ),
                ((status,) if status else ()) + (limit,),
            )
            result = []
            for r in cursor.fetchall():
                body = json.loads(r[4])
                result.append(
                    {
                        "id": r[0],
                        "channel": r[1],
                        "group_key": r[2],
                        "status": r[3],
                        "title_status": body.get("status"),
                        "kind": body.get("kind"),
                        "alerts": len(body.get("alerts", [])) + body.get("truncatedAlerts", 0),
                        "created_at_ms": r[5],
                        "attempts": r[6],
                        "last_error": r[7],
                        "finished_at_ms": r[8],
                        "next_attempt_ms": r[9],
                        "log": [],
                    }
                )
            for item in result:
                cursor.execute(
                    sql(
                        "SELECT ts_ms, node, ok, detail, duration_ms FROM alert_attempts WHERE outbox_id = ? "
                        "ORDER BY id DESC LIMIT ?"
                    ),
                    (item["id"], LOG_ATTEMPTS),
                )
                item["log"] = [
                    {"ts_ms": a[0], "node": a[1], "ok": bool(a[2]), "detail": a[3], "duration_ms": a[4]}
                    for a in cursor.fetchall()
                ]
            return result

        deliveries: list[dict[str, Any]] = await self.store.interaction(work)
        return deliveries

    async def prune(self, before_ms: int) -> None:
        """Forget finished deliveries (and their attempts) and old timeline
        entries; pending ones are kept whatever their age."""
        sql = self._sql

        def work(cursor: Any) -> None:
            cursor.execute(
                sql("SELECT id FROM alert_outbox WHERE status IN ('delivered', 'dead') AND finished_at_ms < ?"),
                (before_ms,),
            )
            ids = [r[0] for r in cursor.fetchall()]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                cursor.execute(sql(f"DELETE FROM alert_attempts WHERE outbox_id IN ({marks})"), chunk)
                cursor.execute(sql(f"DELETE FROM alert_outbox WHERE id IN ({marks})"), chunk)
            cursor.execute(sql("DELETE FROM alert_events WHERE ts_ms < ?"), (before_ms,))
            cursor.execute(sql("DELETE FROM alert_silences WHERE ends_at_ms < ?"), (before_ms,))

        await self.store.interaction(work)
