"""Tokens minted by `dashd token`: their ids are recorded in the store so an
operator can list them and revoke one (`dashd token revoke ID`). A running
daemon reads the revocations with the others every 5 seconds
(UserDirectory.load_revocations) and closes the sockets that used it."""

from __future__ import annotations

from dataclasses import dataclass

from dashd.store.audit import SqlRunner
from dashd.timefmt import iso_ms


class TokenNotFound(LookupError):
    """No active token with that id."""


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    subject: str
    role: str
    issued_at_ms: int
    expires_at_ms: int
    revoked_at_ms: int | None

    def state(self, now_ms: int) -> str:
        if self.revoked_at_ms is not None:
            return "revoked"
        return "expired" if self.expires_at_ms <= now_ms else "active"

    def line(self, now_ms: int) -> str:
        return "\t".join(
            (
                self.token_id,
                self.subject,
                self.role,
                iso_ms(self.issued_at_ms),
                iso_ms(self.expires_at_ms),
                self.state(now_ms),
            )
        )


class IssuedTokens:
    """The issued_tokens table (migration 0002)."""

    def __init__(self, store: SqlRunner) -> None:
        self._store = store

    async def record(self, token: IssuedToken) -> None:
        await self._store.execute(
            "INSERT INTO issued_tokens (id, subject, role, issued_at_ms, expires_at_ms, revoked_at_ms) "
            "VALUES (?, ?, ?, ?, ?, NULL)",
            (token.token_id, token.subject, token.role, token.issued_at_ms, token.expires_at_ms),
        )

    async def list(self) -> list[IssuedToken]:
        rows = await self._store.fetchall(
            "SELECT id, subject, role, issued_at_ms, expires_at_ms, revoked_at_ms FROM issued_tokens "
            "ORDER BY issued_at_ms, id"
        )
        return [IssuedToken(*row) for row in rows]

    async def revoke(self, token_id: str, now_ms: int) -> None:
        changed = await self._store.execute(
            "UPDATE issued_tokens SET revoked_at_ms = ? WHERE id = ? AND revoked_at_ms IS NULL AND expires_at_ms > ?",
            (now_ms, token_id, now_ms),
        )
        if changed != 1:
            raise TokenNotFound(f"no active token with id {token_id!r} (see `dashd token list`)")
