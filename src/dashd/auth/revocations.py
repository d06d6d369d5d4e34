"""What was revoked: login sessions (logout, password change), disabled
users and `dashd token` tokens. Kept in memory so authentication never waits
on the store; dashd.auth.users refreshes it from the store."""

from __future__ import annotations

from dashd.auth.tokens import AuthError, Principal


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

    def replace(
        self, revoked_sessions: set[str], disabled_users: set[str], revoked_tokens: set[str] = frozenset()
    ) -> bool:
        """Take the store's view; True when something new was revoked or disabled."""
        tightened = bool(
            revoked_sessions - self._revoked_sessions
            or disabled_users - self._disabled_users
            or revoked_tokens - self._revoked_tokens
        )
        self._revoked_sessions = set(revoked_sessions) | self._revoked_sessions
        self._disabled_users = set(disabled_users)
        self._revoked_tokens = set(revoked_tokens) | self._revoked_tokens
        return tightened

    def check(self, principal: Principal) -> None:
        """Raises AuthError when the principal's session, user or token was revoked."""
        if principal.session_id and principal.session_id in self._revoked_sessions:
            raise AuthError("session revoked")
        if principal.subject in self._disabled_users:
            raise AuthError("user disabled")
        if principal.token_id and principal.token_id in self._revoked_tokens:
            raise AuthError("token revoked")
