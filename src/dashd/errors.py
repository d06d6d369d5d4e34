"""Errors that travel to clients (the original specification's
WebSocketException and ConnectionException)."""

from __future__ import annotations

from typing import Any

import orjson

ERROR_CODES = (
    "bad_json",
    "bad_message",
    "unknown_type",
    "unauthorized",
    "forbidden",
    "rate_limited",
    "too_large",
    "not_found",
    "unavailable",
    "internal",
)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_UNAUTHORIZED = 4001
CLOSE_KICKED = 4002


class ProtocolError(Exception):
    """A request that gets an `error` reply (WebSocketException). With a
    close_code, the connection is closed after the reply."""

    def __init__(
        self, code: str, message: str, details: dict[str, Any] | None = None, close_code: int | None = None
    ) -> None:
        assert code in ERROR_CODES, code
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.close_code = close_code

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            data["details"] = self.details
        return data


class Unavailable(Exception):
    """A dependency (the database) cannot answer now: an expected condition
    during an outage, logged as one line without a traceback and reported to
    clients as `unavailable` (or, for resume, as a `resume_gap`)."""


class HandshakeRefused(Exception):
    """A WebSocket handshake refused with an HTTP status (ConnectionException)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def decode_object(payload: bytes, what: str) -> dict:
    """A JSON object from the wire (a message, a frame, a request body);
    ProtocolError bad_json otherwise."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ProtocolError("bad_json", f"the {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError("bad_json", f"the {what} must be a JSON object")
    return value


def bad_message(message: str, **details: Any) -> ProtocolError:
    """A `bad_message` error with optional details."""
    return ProtocolError("bad_message", message, details or None)


def error_frame(error: ProtocolError, correlation_id: Any) -> dict[str, Any]:
    """The one shape of an `error` frame, on every WebSocket endpoint
    (/dashboard, /metrics, /notifications and /ingest)."""
    return {"type": "error", "correlation_id": correlation_id, "data": error.data()}


MAX_CORRELATION_ID = 128


def correlation_id_of(message: dict) -> Any:
    """The one rule for a request's `correlation_id` (docs/protocol.md): absent
    or null, a string, or an integer (not a boolean), at most 128 characters
    written out. ProtocolError bad_message otherwise."""
    correlation_id = message.get("correlation_id")
    if correlation_id is None:
        return None
    if (
        isinstance(correlation_id, (str, int))
        and not isinstance(correlation_id, bool)
        and len(str(correlation_id)) <= MAX_CORRELATION_ID
    ):
        return correlation_id
    raise bad_message(f"'correlation_id' must be a string of at most {MAX_CORRELATION_ID} characters")
