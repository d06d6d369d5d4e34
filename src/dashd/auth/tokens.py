"""Tokens and roles: signed JWTs (PyJWT, HS256) carrying a subject, a role
and an expiry; the signing key lives in --secret-file (created 0600)."""

from __future__ import annotations

import os
import secrets
import stat
import time
import uuid
from dataclasses import dataclass

import jwt
from twisted.logger import Logger

log = Logger()

ISSUER = "dashd"
ALGORITHM = "HS256"
ROLES = ("viewer", "operator", "admin")
AGENT_ROLE = "agent"
ROLE_RANK = {"viewer": 1, "operator": 2, "admin": 3}


class AuthError(Exception):
    """A token or credential was refused; str() says why (never the secret)."""


class EndpointForbidden(AuthError):
    """A valid token used where its role may not go (HTTP 403)."""


INGEST_ENDPOINT = "ingest"
AGENT_SUBJECT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def check_endpoint(principal: Principal, endpoint: str) -> None:
    """The one rule on where a role may go: an agent token (one on every
    fleet host) only pushes samples to /ingest, and /ingest takes only agent
    tokens. Every HTTP request, WebSocket handshake and `auth` message passes
    through dashd.auth.handshake.TokenVerifier.verify, which applies it."""
    if principal.role == AGENT_ROLE:
        if endpoint != INGEST_ENDPOINT:
            raise EndpointForbidden("agent tokens may only publish samples to /ingest")
        if not principal.subject or len(principal.subject) > 128 or not set(principal.subject) <= AGENT_SUBJECT_CHARS:
            # The subject is the host name the agent publishes (and is logged) as.
            raise EndpointForbidden("an agent token's subject must be a host name (letters, digits, '.', '_', '-')")
    elif endpoint == INGEST_ENDPOINT:
        raise EndpointForbidden("/ingest needs an agent token (dashd token --role agent)")


@dataclass(frozen=True)
class Principal:
    """Who is on a connection or request."""

    subject: str
    role: str
    expires_at: float  # Unix seconds
    session_id: str | None = None  # login session, for revocation
    token_id: str = ""

    def may(self, required_role: str) -> bool:
        if self.role == AGENT_ROLE:
            return False
        return ROLE_RANK.get(self.role, 0) >= ROLE_RANK[required_role]


def load_or_create_secret(path: str) -> bytes:
    """The signing key; generated (64 random hex chars, mode 0600) on first use."""
    try:
        with open(path, "rb") as f:
            key = f.read().strip()
    except FileNotFoundError:
        directory = os.path.dirname(os.path.abspath(path))
        # A directory created to hold the key is private (0700 under any
        # umask that leaves the owner's bits): `dashd token` on a fresh
        # state directory used to create it 0755.
        os.makedirs(directory, mode=0o700, exist_ok=True)
        key = secrets.token_hex(32).encode("ascii")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first
            return load_or_create_secret(path)
        with os.fdopen(fd, "wb") as f:
            f.write(key + b"\n")
        log.info("created a new token signing key at {path}", path=path)
        return key
    if len(key) < 32:
        raise AuthError(f"{path} holds fewer than 32 bytes; remove it to generate a new key")
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        log.warn("{path} is readable by others (mode {mode:o}); chmod 600 it", path=path, mode=mode)
    return key


class TokenIssuer:
    """Mints and verifies access tokens."""

    def __init__(self, secret: bytes, clock=time.time) -> None:
        self._secret = secret
        self._clock = clock

    def mint(
        self, subject: str, role: str, ttl: float, session_id: str | None = None, token_id: str | None = None
    ) -> tuple[str, float]:
        if role not in ROLE_RANK and role != AGENT_ROLE:
            raise AuthError(f"unknown role {role!r}; one of {', '.join(ROLES + (AGENT_ROLE,))}")
        now = self._clock()
        expires = now + ttl
        claims = {
            "iss": ISSUER,
            "typ": "access",
            "sub": subject,
            "role": role,
            "iat": int(now),
            "exp": int(expires),
            "jti": token_id or uuid.uuid4().hex,
        }
        if session_id:
            claims["sid"] = session_id
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), float(int(expires))

    def _decode(self, token: object, kind: str, required: list[str]) -> dict:
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise AuthError("a token must be a non-empty string")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": required},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as e:
            raise AuthError(f"invalid token ({type(e).__name__})") from None
        if claims.get("typ") != kind:
            raise AuthError(f"invalid token (expected a {kind} token)")
        return claims

    def mint_refresh(self, subject: str, session_id: str, ttl: float, jti: str = "") -> str:
        now = self._clock()
        claims = {
            "iss": ISSUER,
            "typ": "refresh",
            "sub": subject,
            "sid": session_id,
            "iat": int(now),
            "exp": int(now + ttl),
        }
        if jti:
            claims["jti"] = jti
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify_refresh(self, token: object) -> tuple[str, str, str | None]:
        """(subject, session id, token id) of a valid refresh token (the id is
        None for one minted before rotation existed)."""
        claims = self._decode(token, "refresh", ["exp", "sub", "sid", "iss"])
        jti = claims.get("jti")
        return claims["sub"], claims["sid"], jti if isinstance(jti, str) else None

    def verify(self, token: object) -> Principal:
        claims = self._decode(token, "access", ["exp", "sub", "role", "iss"])
        role = claims.get("role")
        if role not in ROLE_RANK and role != AGENT_ROLE:
            raise AuthError("invalid token (unknown role)")
        if not isinstance(claims.get("sub"), str):
            raise AuthError("invalid token (bad subject)")
        return Principal(
            subject=claims["sub"],
            role=role,
            expires_at=float(claims["exp"]),
            session_id=claims.get("sid"),
            token_id=str(claims.get("jti", "")),
        )
