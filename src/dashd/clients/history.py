"""History queries, as the WebSocket `history`/`stats` requests, GET
/api/history and GET /api/export ask for them: validation against the
catalogue and the limits, the cost the query scheduler charges, and the
store read. No protocol here; the callers turn ProtocolError into their own
error shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from twisted.internet.defer import Deferred

from dashd.clients.fields import number_field, pattern_list, string_field
from dashd.clients.queries import HOUR_MS, MINUTE_MS, QueryCost, history_cost
from dashd.clients.seams import HistorySource, MetricCatalogue, QueryAdmission, SamplingControl
from dashd.clients.series_query import check_metric_selectors, resolve_selectors
from dashd.errors import ProtocolError
from dashd.errors import bad_message as bad
from dashd.settings import Settings, format_duration
from dashd.timefmt import iso_ms, parse_time

DEFAULT_HISTORY_POINTS = 300


@dataclass(frozen=True)
class HistoryQuery:
    host: str
    metrics: list[str]
    from_ms: int
    to_ms: int
    max_points: int


class HistoryQueries:
    """Validates, prices, schedules and runs history queries for every client
    kind (WebSocket, /api/history, /api/export)."""

    def __init__(
        self,
        settings: Settings,
        catalogue: MetricCatalogue,
        sampling: SamplingControl,
        stored: HistorySource,
        wall_clock_ms: Callable[[], int],
        queries: QueryAdmission | None = None,
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.sampling = sampling
        self.stored = stored
        self.wall_clock_ms = wall_clock_ms
        self.queries = queries

    @property
    def interval(self) -> float:
        return self.sampling.interval

    def check_metric_patterns(self, patterns: list[str], request: str) -> None:
        """Selectors (dashd.stream.selection): bad_message if malformed or unknown."""
        check_metric_selectors(self.catalogue, patterns, request)

    def metric_names(self, data: dict, request: str, host: str | None = None) -> list[str]:
        """The series of `host` (default this one) that the request's selectors name."""
        patterns = pattern_list(data, "metrics", request)
        if not patterns:
            raise bad(
                f"{request}: 'metrics' is required (names, globs or selectors such as disk_used_percent{{mount=\"/\"}})"
            )
        return resolve_selectors(self.catalogue, patterns, request, host or self.catalogue.host)

    def validate(self, data: dict) -> HistoryQuery:
        """Check a history request (WebSocket or HTTP); ProtocolError if bad."""
        settings = self.settings
        host = string_field(data, "host", "history", required=False, max_length=128) or self.catalogue.host
        metrics = self.metric_names(data, "history", host)
        now = self.wall_clock_ms()
        try:
            to_ms = parse_time(data["to"], now) if data.get("to") is not None else now
            from_ms = parse_time(data["from"], now) if data.get("from") is not None else to_ms - 3_600_000
        except (ValueError, OverflowError, OSError):
            raise bad(
                "history: 'from' and 'to' must be ISO-8601 times, Unix seconds, or '-<duration>' such as '-15m'"
            ) from None
        if from_ms >= to_ms:
            raise bad("history: 'from' must be before 'to'")
        if (to_ms - from_ms) / 1000.0 > settings.max_history_span:
            raise ProtocolError(
                "too_large",
                f"history: the range may span at most {format_duration(settings.max_history_span)}",
            )
        max_points = data.get("max_points", DEFAULT_HISTORY_POINTS)
        if (
            isinstance(max_points, int)
            and not isinstance(max_points, bool)
            and max_points > settings.max_history_points
        ):
            raise ProtocolError("too_large", f"history: at most {settings.max_history_points} points")
        max_points = number_field(
            data, "max_points", "history", 1, settings.max_history_points, default=DEFAULT_HISTORY_POINTS, integer=True
        )
        return HistoryQuery(host, metrics, from_ms, to_ms, int(max_points))

    def cost(self, query: HistoryQuery) -> QueryCost:
        """Rows read + points returned: the raw tier has a row per collection
        interval, the 1-minute tier one per minute, the 1-hour tier one per
        hour (the tier whose retention covers the start; see Store.tier_for)."""
        now_ms = self.wall_clock_ms()
        if query.from_ms >= now_ms - int(self.settings.retention_raw * 1000):
            resolution_ms = int(self.interval * 1000)
        elif query.from_ms >= now_ms - int(self.settings.retention_rollup * 1000):
            resolution_ms = MINUTE_MS
        else:
            resolution_ms = HOUR_MS
        return history_cost(len(query.metrics), query.to_ms - query.from_ms, query.max_points, resolution_ms)

    def schedule(self, owner: Any, user: str, query: HistoryQuery) -> Deferred:
        """A history query through the daemon's QueryScheduler (cost checked,
        bounded queue, cancelled with `owner`); direct when there is none."""

        def run() -> Deferred:
            return Deferred.fromCoroutine(self.fetch(query))

        if self.queries is None:
            return run()
        return self.queries.submit(owner, user, self.cost(query), run)

    def cancel(self, owner: Any) -> None:
        """Drop `owner`'s query, queued or running (its client went away)."""
        if self.queries is not None:
            self.queries.cancel_owner(owner)

    async def fetch(self, query: HistoryQuery) -> dict:
        result = await self.stored.history(
            query.host, query.metrics, query.from_ms, query.to_ms, query.max_points, int(self.interval * 1000)
        )
        return {
            "from": iso_ms(query.from_ms),
            "to": iso_ms(query.to_ms),
            "tier": result.tier,
            "bucket_ms": result.bucket_ms,
            "host": query.host,
            "series": result.series,
        }
