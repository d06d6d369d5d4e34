"""The process requests (issue 19 items 2 and 3): `processes_subscribe`,
`processes_unsubscribe` and `processes_at` on the WebSocket, and the same
look-back for `GET /api/processes`. Validation and redaction live here; the
router and the HTTP resource only call in (docs/protocol.md, "Processes").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from dashd.collect.processes import ORDERS
from dashd.errors import ProtocolError
from dashd.store.processes import ProcessHistory
from dashd.stream.processes import MAX_LIMIT, SENSITIVE_ROLE, ProcessStream, ProcessView, table_data
from dashd.stream.streams import OutboundFrame
from dashd.timefmt import parse_time

MS_FROM = 1e11  # a number at or above this is Unix milliseconds, below it Unix seconds
MIN_TOLERANCE_MS = 60_000


def _bad(message: str, **details: Any) -> ProtocolError:
    return ProtocolError("bad_message", message, details or None)


@dataclass(frozen=True)
class LookBackQuery:
    at_ms: int
    host: str
    sort: str
    limit: int


class ProcessRequests:
    """Answers the process requests of every connection.

    `live` is False when the process collector is not running (the
    `collectors` setting): subscribing is then `unavailable`, the look-back
    still answers from what is stored (other nodes may write it)."""

    def __init__(
        self,
        stream: ProcessStream,
        history: ProcessHistory | None,
        *,
        host: str,
        interval: float,
        default_limit: int,
        cmdlines: bool,
        live: bool,
        wall_clock_ms: Callable[[], int],
    ) -> None:
        self.stream = stream
        self.history = history
        self.host = host
        self.interval = interval
        self.default_limit = max(1, min(default_limit, MAX_LIMIT))
        self.cmdlines = cmdlines
        self.live = live
        self._wall_clock_ms = wall_clock_ms

    @property
    def tolerance_ms(self) -> int:
        """How far from the asked time the nearest stored table may be:
        three storage periods, and at least a minute."""
        store_interval = self.history.store_interval if self.history is not None else self.interval
        return max(MIN_TOLERANCE_MS, int(3 * store_interval * 1000))

    # ----- the live stream

    def subscribe(
        self,
        owner: Hashable,
        principal: Callable[[], Any],
        deliver: Callable[[OutboundFrame], None],
        data: dict,
        acknowledge: Callable[[dict], None],
    ) -> None:
        """Subscribe `owner` (a session); `principal()` is its current
        principal (its role decides the redaction of each table).
        `acknowledge(reply)` is called before the newest table is sent, so
        the reply comes first."""
        sort, limit = self._sort_and_limit(data, "processes_subscribe", default_sort="cpu")
        host = self._host(data, "processes_subscribe")
        if not self.live:
            raise ProtocolError(
                "unavailable",
                "processes_subscribe: the process collector is not running on this "
                "node (add processes to the collectors setting)",
            )
        if host != self.host:
            raise ProtocolError(
                "not_found",
                f"processes_subscribe: this node streams the processes of "
                f"{self.host!r} only; use processes_at for {host!r}",
                {"host": self.host},
            )

        def view() -> ProcessView:
            current = principal()
            sensitive = current is not None and current.may(SENSITIVE_ROLE)
            return ProcessView(sort, limit, host, sensitive, self.cmdlines)

        acknowledge({"sort": sort, "limit": limit, "interval": self.interval, "host": host})
        self.stream.subscribe(owner, view, deliver)

    def unsubscribe(self, owner: Hashable) -> dict:
        return {"subscribed": False, "was_subscribed": self.stream.unsubscribe(owner)}

    # ----- look-back

    def parse_at(self, data: dict, request: str) -> LookBackQuery:
        raw = data.get("time")
        if raw is None:
            raise _bad(f"{request}: 'time' is required (ISO-8601, Unix ms, or '-<duration>' such as '-1h')")
        try:
            at_ms = _time_ms(raw, self._wall_clock_ms())
        except (ValueError, OverflowError, OSError):
            raise _bad(
                f"{request}: 'time' must be ISO-8601, Unix ms (or seconds), or '-<duration>' such as '-1h'",
                time=str(raw)[:64],
            ) from None
        sort, limit = self._sort_and_limit(data, request, default_sort="cpu")
        return LookBackQuery(at_ms, self._host(data, request), sort, limit)

    async def at(self, query: LookBackQuery, principal: Any) -> dict:
        """The stored table nearest the query's time, for this principal."""
        if self.history is None:
            raise ProtocolError("unavailable", "processes_at: process look-back is not kept on this node")
        snapshot = await self.history.nearest(query.host, query.at_ms, self.tolerance_ms)
        if snapshot is None:
            raise ProtocolError(
                "not_found",
                f"no process table of {query.host!r} within {self.tolerance_ms // 1000}s of the asked time",
                {"host": query.host, "tolerance_seconds": self.tolerance_ms / 1000},
            )
        view = ProcessView(query.sort, query.limit, query.host, principal.may(SENSITIVE_ROLE), self.cmdlines)
        return table_data(snapshot, view)

    # ----- validation

    def _sort_and_limit(self, data: dict, request: str, *, default_sort: str) -> tuple[str, int]:
        sort = data.get("sort", default_sort)
        if sort is None:
            sort = default_sort
        if not isinstance(sort, str) or sort not in ORDERS:
            raise _bad(f"{request}: 'sort' must be one of {', '.join(ORDERS)}", sort=_shown(sort), allowed=list(ORDERS))
        limit = data.get("limit", self.default_limit)
        if limit is None:
            limit = self.default_limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _bad(
                f"{request}: 'limit' must be an integer from 1 to {MAX_LIMIT}",
                limit=_shown(limit),
                min=1,
                max=MAX_LIMIT,
            )
        return sort, limit

    def _host(self, data: dict, request: str) -> str:
        host = data.get("host")
        if host is None:
            return self.host
        if not isinstance(host, str) or not 0 < len(host) <= 128:
            raise _bad(f"{request}: 'host' must be a host name of at most 128 characters")
        return host


def _time_ms(value: Any, now_ms: int) -> int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        if value >= MS_FROM:
            if value >= MS_FROM * 1000:
                raise ValueError("Unix ms out of range")
            return int(value)
    return parse_time(value, now_ms)


def _shown(value: Any) -> Any:
    """A rejected value as the error's details show it (bounded)."""
    if isinstance(value, str):
        return value[:64]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return type(value).__name__
