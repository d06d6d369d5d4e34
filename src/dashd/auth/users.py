"""Users and login sessions: accounts in the store with scrypt password
hashes, login with back-off after repeated failures, refresh sessions that
can be revoked, and the first-start admin account."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from dashd.auth.revocations import RevocationList
from dashd.auth.throttle import HashSlots, LoginThrottle, LoginThrottled
from dashd.auth.tokens import ROLES, AuthError, Principal, TokenIssuer
from dashd.ops.ratelog import SummarizedLog, printable
from dashd.store.accounts import AccountRecords
from dashd.store.audit import SqlRunner
from dashd.timefmt import iso_ms, now_ms

log = Logger()

USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
# scrypt cost: N=2**15, r=8 uses 32 MiB and ~50-100 ms per hash; run in a thread.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
INITIAL_PASSWORD_FILE = "initial-admin-password"
# A refresh token rotated away this recently is accepted once more, without
# a new refresh token: two tabs refreshing together are not a theft.
REFRESH_REUSE_GRACE_MS = 5_000


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash to check against when the user does not exist, so a login for an
# unknown name costs the same time as one for a known name.
_DUMMY_HASH = hash_password("not a real password", n=SCRYPT_N)


class UserError(ValueError):
    """Bad user input (name, role, password); str() says what is wrong."""


def check_username(name: str) -> str:
    if not isinstance(name, str) or not USERNAME.match(name):
        raise UserError("a user name is 1-64 letters, digits, '_', '.', '@' or '-'")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


@dataclass(frozen=True)
class LoginResult:
    username: str
    role: str
    access_token: str
    expires_at: float
    expires_in: int
    refresh_token: str
    session_id: str
    refresh_max_age: int  # seconds the refresh cookie lives: what is left of the session

    def body(self) -> dict:
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "expires_at": iso_ms(self.expires_at * 1000),
            "role": self.role,
            "username": self.username,
        }


class UserDirectory:
    def __init__(
        self,
        store: SqlRunner,
        tokens: TokenIssuer,
        revocations: RevocationList,
        *,
        access_ttl: float,
        refresh_ttl: float,
        clock: IReactorTime,
        wall_clock_ms: Callable[[], int] = now_ms,
        throttle: LoginThrottle | None = None,
        hash_slots: HashSlots | None = None,
        check_password: Callable[[str, str], bool] = verify_password,
    ) -> None:
        self._accounts = AccountRecords(store)
        self._tokens = tokens
        self._revocations = revocations
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._now = wall_clock_ms
        self.throttle = throttle or LoginThrottle()
        self.hash_slots = hash_slots or HashSlots()
        self._check_password = check_password
        self._log = SummarizedLog(log, clock)
        self._revocation_observers: list[Callable[[], None]] = []

    def add_revocation_observer(self, observer: Callable[[], None]) -> None:
        """Call `observer` whenever sessions are revoked or users disabled
        (here or, found by load_revocations, on another node)."""
        self._revocation_observers.append(observer)

    def close(self) -> None:
        """At shutdown: write the summary of rate-limited log lines."""
        self._log.stop()

    # ----- accounts

    async def get(self, name: str) -> dict | None:
        row = await self._accounts.user(name)
        if row is None:
            return None
        return {"name": row.name, "password_hash": row.password_hash, "role": row.role, "disabled": row.disabled}

    async def add(self, name: str, role: str, password: str) -> None:
        check_username(name), check_role(role), check_password(password)
        if await self.get(name) is not None:
            raise UserError(f"user {name!r} exists")
        password_hash = await deferToThread(hash_password, password)
        await self._accounts.add_user(name, password_hash, role, self._now())

    async def list(self) -> list[dict]:
        return [
            {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": iso_ms(u.created_at_ms)}
            for u in await self._accounts.users()
        ]

    async def set_password(self, name: str, password: str) -> None:
        check_password(password)
        if await self.get(name) is None:
            raise UserError(f"no user {name!r}")
        password_hash = await deferToThread(hash_password, password)
        await self._accounts.set_password_hash(name, password_hash, self._now())
        await self.revoke_user_sessions(name)

    async def set_disabled(self, name: str, disabled: bool) -> None:
        if await self.get(name) is None:
            raise UserError(f"no user {name!r}")
        await self._accounts.set_disabled(name, disabled, self._now())
        if disabled:
            self._revocations.disable_user(name)
            await self.revoke_user_sessions(name)
        else:
            self._revocations.enable_user(name)

    async def set_role(self, name: str, role: str) -> None:
        check_role(role)
        if await self.get(name) is None:
            raise UserError(f"no user {name!r}")
        await self._accounts.set_role(name, role, self._now())
        await self.revoke_user_sessions(name)

    async def count(self) -> int:
        return await self._accounts.count_users()

    async def ensure_initial_admin(self, state_dir: str) -> str | None:
        """First start with no users: create `admin` with a random password
        written to STATE_DIR/initial-admin-password (0600). Returns the path."""
        if await self.count() > 0:
            return None
        password = secrets.token_urlsafe(18)
        await self.add("admin", "admin", password)
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        path = os.path.join(state_dir, INITIAL_PASSWORD_FILE)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        os.chmod(path, 0o600)
        log.info(
            "created user 'admin'; its password is in {path} (log in, then change it with 'dashd user passwd admin')",
            path=path,
        )
        return path

    async def load_revocations(self) -> bool:
        """Refresh the in-memory revocation list from the store: at start and
        then periodically, so `dashd user disable` or a logout on another
        node reaches this daemon. Returns whether anything changed."""
        revoked = await self._accounts.revocations(self._now())
        changed = self._revocations.replace(revoked.sessions, revoked.disabled_users, revoked.tokens)
        if changed:
            self._notify_revoked()
        return changed

    # ----- login sessions

    async def login(self, name: object, password: object, address: str) -> LoginResult:
        """Check a password. The attempt is counted against the user name and
        the address *before* the hash runs (dashd.auth.throttle), so parallel
        attempts cannot overrun the budget; raises LoginThrottled or AuthError."""
        if not isinstance(name, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD or len(name) > 64:
            raise AuthError("username and password must be strings")
        now = self._now()
        shown = printable(name, 64)
        try:
            # One budget per name whatever its case: MySQL/MariaDB compare
            # user names case-insensitively, so 'ALICE' and 'Alice' are alice
            # there and each spelling used to have a budget of its own.
            reservation = self.throttle.reserve(name.lower(), address, now)
        except LoginThrottled as e:
            self._log.warn(
                "login-throttled",
                "login for {user} from {address} throttled for {wait:.0f}s",
                user=shown,
                address=address,
                wait=e.retry_after,
            )
            raise
        try:
            self.hash_slots.acquire(address)
        except LoginThrottled as e:
            reservation.cancelled()
            self._log.warn(
                "login-busy", "login for {user} from {address} refused: {why}", user=shown, address=address, why=e.why
            )
            raise
        try:
            user = await self.get(name) if USERNAME.match(name) else None
            password_ok = await deferToThread(
                self._check_password, password, user["password_hash"] if user else _DUMMY_HASH
            )
        except BaseException:
            reservation.cancelled()
            raise
        finally:
            self.hash_slots.release(address)
        if user is None or not password_ok or user["disabled"]:
            count = reservation.failed(self._now())
            reason = "disabled" if user and user["disabled"] and password_ok else "bad credentials"
            self._log.warn(
                "login-failed",
                "failed login for {user} from {address}: {reason} ({count} in a row)",
                user=shown,
                address=address,
                reason=reason,
                count=count,
            )
            raise AuthError("wrong username or password" if reason == "bad credentials" else "user disabled")
        reservation.succeeded()
        name = user["name"]  # the stored spelling: revocations and audit match it exactly
        session_id, refresh_jti = uuid.uuid4().hex, uuid.uuid4().hex
        expires_ms = now + int(self.refresh_ttl * 1000)
        await self._accounts.add_session(session_id, name, now, expires_ms, address[:128], refresh_jti)
        log.info("{user} logged in from {address}", user=name, address=address)
        return self._issue(name, user["role"], session_id, refresh_jti, expires_ms)

    def _issue(self, name: str, role: str, session_id: str, refresh_jti: str, session_expires_ms: int) -> LoginResult:
        token, expires_at = self._tokens.mint(name, role, self.access_ttl, session_id=session_id)
        # The refresh token ends with its session: rotation does not extend it.
        remaining = max(1, (session_expires_ms - self._now()) // 1000)
        refresh = self._tokens.mint_refresh(name, session_id, remaining, jti=refresh_jti)
        return LoginResult(name, role, token, expires_at, int(self.access_ttl), refresh, session_id, int(remaining))

    async def refresh(self, refresh_token: object, _raced: bool = False) -> LoginResult:
        """A new access token and a new refresh token (rotation). A refresh
        token already rotated away is a stolen or replayed one: the whole
        session (the family of refresh tokens it belongs to) is revoked,
        which also closes the sockets of its access tokens."""
        name, session_id, jti = self._tokens.verify_refresh(refresh_token)
        session = await self._accounts.session(session_id)
        now = self._now()
        if (
            session is None
            or session.username != name
            or session.revoked_at_ms is not None
            or session.expires_at_ms <= now
        ):
            raise AuthError("session expired or revoked")
        expires_ms, current_jti = session.expires_at_ms, session.refresh_jti
        previous_jti, rotated_at_ms = session.previous_jti, session.rotated_at_ms
        user = await self.get(name)
        if user is None or user["disabled"]:
            raise AuthError("user disabled")
        if current_jti is not None and jti != current_jti:
            if jti is not None and jti == previous_jti and now - (rotated_at_ms or 0) <= REFRESH_REUSE_GRACE_MS:
                # Two tabs refreshed at once: the other one's response carries
                # the new cookie. An access token, but no refresh token.
                token, expires_at = self._tokens.mint(name, user["role"], self.access_ttl, session_id=session_id)
                return LoginResult(name, user["role"], token, expires_at, int(self.access_ttl), "", session_id, 0)
            await self._reuse_detected(name, session_id)
        next_jti = uuid.uuid4().hex
        # Compare-and-set: of two requests racing with one refresh token,
        # exactly one rotates it.
        if not await self._accounts.rotate_refresh(session_id, current_jti, next_jti, now):
            if not _raced:
                # Another request rotated it first: look again (the grace
                # above applies to it, or this is reuse).
                return await self.refresh(refresh_token, _raced=True)
            await self._reuse_detected(name, session_id)
        return self._issue(name, user["role"], session_id, next_jti, int(expires_ms))

    async def _reuse_detected(self, name: str, session_id: str) -> None:
        log.warn(
            "a rotated refresh token of {user} was used again: session {session} revoked (stolen cookie?)",
            user=printable(name, 64),
            session=session_id[:8],
        )
        await self._revoke(session_id)
        raise AuthError("refresh token already used; the session was revoked, log in again")

    async def logout(self, refresh_token: object) -> None:
        name, session_id, _ = self._tokens.verify_refresh(refresh_token)
        await self._revoke(session_id)

    async def revoke_user_sessions(self, name: str) -> None:
        for session_id in await self._accounts.live_session_ids(name):
            await self._revoke(session_id, notify=False)
        self._notify_revoked()

    async def _revoke(self, session_id: str, notify: bool = True) -> None:
        await self._accounts.revoke_session(session_id, self._now())
        self._revocations.revoke_session(session_id)
        if notify:
            self._notify_revoked()

    def _notify_revoked(self) -> None:
        for observer in self._revocation_observers:
            observer()

    async def session_principal(self, refresh_token: object) -> Principal:
        """Who holds this session cookie, without rotating it: for GET routes a
        browser reaches by a plain link (the export download). The session
        must be live, the cookie its current refresh token (one rotated away
        is refused, as a stolen copy would be) and the user enabled; the
        role is the user's current one."""
        name, session_id, jti = self._tokens.verify_refresh(refresh_token)
        session = await self._accounts.session(session_id)
        if (
            session is None
            or session.username != name
            or session.revoked_at_ms is not None
            or session.expires_at_ms <= self._now()
        ):
            raise AuthError("session expired or revoked")
        if session.refresh_jti is not None and jti != session.refresh_jti:
            raise AuthError("this session cookie was replaced by a newer one; reload the page")
        user = await self.get(name)
        if user is None or user["disabled"]:
            raise AuthError("user disabled")
        return Principal(name, user["role"], session.expires_at_ms / 1000.0, session_id=session_id)
