"""Validation of request fields shared by every request handler (the
WebSocket router, history, the HTTP API): each raises a `bad_message`
ProtocolError naming the request and the field."""

from __future__ import annotations

import fnmatch
import math
from typing import Literal, overload

from dashd.errors import bad_message as bad

MAX_PATTERN = 1024  # a selector naming a control group by its path can be long


def pattern_list(data: dict, key: str, request: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(p, str) and 0 < len(p) <= MAX_PATTERN for p in value):
        raise bad(f"{request}: '{key}' must be a list of names or glob patterns")
    return value


@overload
def number_field(
    data: dict, key: str, request: str, low: float, high: float, *, default: float, integer: bool = False
) -> float: ...


@overload
def number_field(
    data: dict, key: str, request: str, low: float, high: float, *, default: None = None, integer: bool = False
) -> float | None: ...


def number_field(
    data: dict, key: str, request: str, low: float, high: float, *, default: float | None = None, integer: bool = False
) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise bad(f"{request}: '{key}' must be {kind} from {low:g} to {high:g}")
    if isinstance(value, float) and not math.isfinite(value) or not low <= value <= high:
        raise bad(f"{request}: '{key}' must be {kind} from {low:g} to {high:g}")
    return value


@overload
def string_field(
    data: dict,
    key: str,
    request: str,
    *,
    required: Literal[True] = True,
    max_length: int = 256,
    default: str | None = None,
) -> str: ...


@overload
def string_field(
    data: dict, key: str, request: str, *, required: bool, max_length: int = 256, default: str | None = None
) -> str | None: ...


def string_field(
    data: dict, key: str, request: str, *, required: bool = True, max_length: int = 256, default: str | None = None
) -> str | None:
    value = data.get(key, default)
    if value is None:
        if required:
            raise bad(f"{request}: '{key}' is required")
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise bad(f"{request}: '{key}' must be a non-empty string of at most {max_length} characters")
    return value


def match(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)
