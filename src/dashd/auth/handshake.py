"""Handshake authentication: the one place that reads an `Authorization:
Bearer` header and decides whether a token may be used where it is shown.

Every WebSocket handshake (dashd.wire.protocol, dashd.wire.ingest), every
HTTP API request (dashd.wire.web, dashd.wire.httpguard) and the `auth`
message (dashd.clients.router) go through `TokenVerifier.verify`: signature
and expiry (TokenIssuer), the endpoint rule (check_endpoint: agents only on
/ingest) and the revocation list, in that order."""

from __future__ import annotations

from typing import Protocol

from dashd.auth.revocations import RevocationList
from dashd.auth.tokens import AuthError, Principal, TokenIssuer, check_endpoint


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header value (scheme
    case-insensitive, surrounding blanks ignored), or None when the header is
    missing, has another scheme or no token."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenCheck(Protocol):
    """What a consumer of tokens needs: verify one for an endpoint, and
    re-check a principal already admitted after a revocation."""

    def verify(self, token: object, endpoint: str = "") -> Principal: ...

    def check(self, principal: Principal) -> None: ...


class TokenVerifier:
    """TokenCheck over the daemon's TokenIssuer and RevocationList."""

    def __init__(self, tokens: TokenIssuer, revocations: RevocationList) -> None:
        self.tokens = tokens
        self.revocations = revocations

    def verify(self, token: object, endpoint: str = "") -> Principal:
        """The principal of a valid, unrevoked token allowed on `endpoint`
        ('' for the WebSocket `auth` message and the HTTP API: anything but
        /ingest). Raises AuthError (EndpointForbidden for a role that may
        not go there)."""
        principal = self.tokens.verify(token)
        check_endpoint(principal, endpoint)
        self.revocations.check(principal)
        return principal

    def check(self, principal: Principal) -> None:
        """Raises AuthError when the principal was revoked since it was admitted."""
        self.revocations.check(principal)


def verify_bearer(check: TokenCheck, authorization: str, endpoint: str = "") -> Principal:
    """The principal of a Bearer header; AuthError (MissingBearer when there
    is no well-formed Bearer header at all)."""
    token = bearer_token(authorization)
    if token is None:
        raise MissingBearer("no 'Authorization: Bearer <token>' header")
    return check.verify(token, endpoint)


class MissingBearer(AuthError):
    """The request carries no well-formed Bearer header."""
