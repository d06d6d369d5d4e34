"""The account tables: `users` (names, scrypt hashes, roles, disabled flag)
and `sessions` (login sessions and their refresh-token rotation). The
policy -- hashing, throttling, rotation and reuse detection -- is
dashd.auth.users.UserDirectory; this module only reads and writes rows.

Every statement runs through a SqlRunner (the Store, or its SystemQueries
for authentication, which has its own connection) on the adbapi pool, and
is written once for both dialects (`?` placeholders; Dialect.sql rewrites
them for MySQL)."""

from __future__ import annotations

from dataclasses import dataclass

from dashd.store.audit import SqlRunner


@dataclass(frozen=True)
class UserRow:
    name: str
    password_hash: str
    role: str
    disabled: bool


@dataclass(frozen=True)
class UserSummary:
    name: str
    role: str
    disabled: bool
    created_at_ms: int


@dataclass(frozen=True)
class SessionRow:
    username: str
    expires_at_ms: int
    revoked_at_ms: int | None
    refresh_jti: str | None
    previous_jti: str | None
    rotated_at_ms: int | None


@dataclass(frozen=True)
class Revocations:
    """What the store says is revoked now (RevocationList.replace takes it)."""

    sessions: set[str]
    disabled_users: set[str]
    tokens: set[str]


class AccountRecords:
    """Named reads and writes of `users`, `sessions` and the revocation view."""

    def __init__(self, runner: SqlRunner) -> None:
        self._runner = runner

    # ----- users

    async def user(self, name: str) -> UserRow | None:
        rows = await self._runner.fetchall(
            "SELECT name, password_hash, role, disabled FROM users WHERE name = ?", (name,)
        )
        if not rows:
            return None
        name, password_hash, role, disabled = rows[0]
        return UserRow(name, password_hash, role, bool(disabled))

    async def add_user(self, name: str, password_hash: str, role: str, now_ms: int) -> None:
        await self._runner.execute(
            "INSERT INTO users (name, password_hash, role, disabled, created_at_ms, updated_at_ms) "
            "VALUES (?, ?, ?, 0, ?, ?)",
            (name, password_hash, role, now_ms, now_ms),
        )

    async def users(self) -> list[UserSummary]:
        rows = await self._runner.fetchall("SELECT name, role, disabled, created_at_ms FROM users ORDER BY name")
        return [UserSummary(n, r, bool(d), c) for n, r, d, c in rows]

    async def set_password_hash(self, name: str, password_hash: str, now_ms: int) -> None:
        await self._runner.execute(
            "UPDATE users SET password_hash = ?, updated_at_ms = ? WHERE name = ?", (password_hash, now_ms, name)
        )

    async def set_disabled(self, name: str, disabled: bool, now_ms: int) -> None:
        await self._runner.execute(
            "UPDATE users SET disabled = ?, updated_at_ms = ? WHERE name = ?", (1 if disabled else 0, now_ms, name)
        )

    async def set_role(self, name: str, role: str, now_ms: int) -> None:
        await self._runner.execute("UPDATE users SET role = ?, updated_at_ms = ? WHERE name = ?", (role, now_ms, name))

    async def count_users(self) -> int:
        rows = await self._runner.fetchall("SELECT COUNT(*) FROM users")
        return int(rows[0][0])

    # ----- login sessions

    async def add_session(
        self, session_id: str, username: str, now_ms: int, expires_at_ms: int, peer: str, refresh_jti: str
    ) -> None:
        await self._runner.execute(
            "INSERT INTO sessions (id, username, created_at_ms, expires_at_ms, revoked_at_ms, peer, refresh_jti) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?)",
            (session_id, username, now_ms, expires_at_ms, peer, refresh_jti),
        )

    async def session(self, session_id: str) -> SessionRow | None:
        rows = await self._runner.fetchall(
            "SELECT username, expires_at_ms, revoked_at_ms, refresh_jti, previous_jti, rotated_at_ms "
            "FROM sessions WHERE id = ?",
            (session_id,),
        )
        return SessionRow(*rows[0]) if rows else None

    async def rotate_refresh(self, session_id: str, current_jti: str | None, next_jti: str, now_ms: int) -> bool:
        """Compare-and-set: move the session's refresh token from `current_jti`
        to `next_jti`. Of two requests racing with one token, exactly one
        gets True."""
        if current_jti is None:
            rotated = await self._runner.execute(
                "UPDATE sessions SET refresh_jti = ?, previous_jti = NULL, rotated_at_ms = ? "
                "WHERE id = ? AND refresh_jti IS NULL AND revoked_at_ms IS NULL",
                (next_jti, now_ms, session_id),
            )
        else:
            rotated = await self._runner.execute(
                "UPDATE sessions SET refresh_jti = ?, previous_jti = ?, rotated_at_ms = ? "
                "WHERE id = ? AND refresh_jti = ? AND revoked_at_ms IS NULL",
                (next_jti, current_jti, now_ms, session_id, current_jti),
            )
        return rotated == 1

    async def live_session_ids(self, username: str) -> list[str]:
        return [
            session_id
            for (session_id,) in await self._runner.fetchall(
                "SELECT id FROM sessions WHERE username = ? AND revoked_at_ms IS NULL", (username,)
            )
        ]

    async def revoke_session(self, session_id: str, now_ms: int) -> None:
        await self._runner.execute("UPDATE sessions SET revoked_at_ms = ? WHERE id = ?", (now_ms, session_id))

    # ----- revocations

    async def revocations(self, now_ms: int) -> Revocations:
        """Revoked sessions and `dashd token` tokens that have not expired yet, and disabled users."""
        sessions = {
            session_id
            for (session_id,) in await self._runner.fetchall(
                "SELECT id FROM sessions WHERE revoked_at_ms IS NOT NULL AND expires_at_ms > ?", (now_ms,)
            )
        }
        disabled = {name for (name,) in await self._runner.fetchall("SELECT name FROM users WHERE disabled = 1")}
        tokens = {
            token_id
            for (token_id,) in await self._runner.fetchall(
                "SELECT id FROM issued_tokens WHERE revoked_at_ms IS NOT NULL AND expires_at_ms > ?", (now_ms,)
            )
        }
        return Revocations(sessions, disabled, tokens)
