"""`GET /api/export`: chosen metrics over a time range as CSV or JSON,
streamed (chunked) page by page so a long range never sits in memory.

The export is the `history` request written out in full: the same metrics
(names or glob patterns), `from`/`to`, `host` and limits (max_history_span,
max_history_points), and the same buckets. It reads the store only through
its public `history(...)`: each metric's range is cut into pages of at most
`page_points` whole buckets, each page is one history query, and the next
page is asked for only when the previous one has been handed to the
transport and the client is not applying back-pressure (the request's
producer is paused while the socket's buffer is full).

Buckets: `bucket_ms` is the one `history` would choose for the same range
and `max_points` (or `resolution` when given), never finer than the sample
interval, or than one minute where the range starts beyond raw retention.
Bucket k covers [from + k*bucket_ms, from + (k+1)*bucket_ms), the last one
ends at `to`; empty buckets are left out, as in `history`. One difference:
a range that starts beyond raw retention but ends within it is answered by
`history` from the rollup throughout, while the export's later pages come
from raw samples (finer data, the same buckets); values agree except where a
minute straddles a bucket edge.

CSV columns (RFC 4180, header line first, `\\r\\n` line ends):
  host          the host the samples came from
  metric        the metric name
  time          bucket start, ISO-8601 UTC with milliseconds
  timestamp_ms  bucket start, Unix milliseconds
  avg,min,max   average, lowest and highest sample in the bucket
  count         how many samples the bucket merged
Rows are ordered by metric (catalogue order), then by time.

JSON: {"host", "from", "to", "bucket_ms", "series": {metric: [{"t", "avg",
"min", "max", "count"}, ...]}} - the shape of a `history` answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from dashd.auth.handshake import TokenCheck
from dashd.auth.tokens import AuthError, Principal
from dashd.clients.history import HistoryQueries, HistoryQuery
from dashd.errors import ProtocolError
from dashd.settings import parse_duration
from dashd.store.database import StoreUnavailable
from dashd.stream.selection import split_selectors
from dashd.timefmt import iso_ms
from dashd.wire.web import (
    HTTP_STATUS_FOR_CODE,
    REFRESH_COOKIE,
    JsonLeaf,
    _headers,
    bearer_principal,
    error_body,
    write_json,
)

log = Logger()

DEFAULT_PAGE_POINTS = 1_000
FORMATS = {"csv": b"text/csv; charset=utf-8", "json": b"application/json"}
CSV_HEADER = b"host,metric,time,timestamp_ms,avg,min,max,count\r\n"
QUERY_KEYS = {"metrics", "from", "to", "host", "max_points", "resolution", "format"}


class HistorySource(Protocol):
    """What the export needs from the store: its public history query."""

    async def history(
        self, host: str, metrics: Any, from_ms: int, to_ms: int, max_points: int, raw_resolution_ms: int
    ) -> Any: ...


class SessionCheck(Protocol):
    """What the export needs from the user directory: who holds a session cookie."""

    async def session_principal(self, refresh_token: object) -> Principal: ...


@dataclass(frozen=True)
class ExportPlan:
    """A validated export: the history query, its bucket width and format."""

    query: HistoryQuery
    bucket_ms: int
    format: str

    def pages(self, page_points: int) -> list[tuple[int, int, int]]:
        """(from_ms, to_ms, max_points) of each history query for one metric:
        runs of whole buckets, then the last (possibly shorter) bucket alone,
        so that every query's bucket equals `bucket_ms` and starts where the
        single query's would."""
        return list(_windows(self.query.from_ms, self.query.to_ms, self.bucket_ms, page_points))


def _windows(start: int, end: int, bucket_ms: int, page_points: int):
    whole = (end - start) // bucket_ms
    position = start
    while whole > 0:
        n = min(page_points, whole)
        yield position, position + n * bucket_ms, n
        position += n * bucket_ms
        whole -= n
    if position < end:
        yield position, end, 1


def query_arguments(request: IRequest) -> dict[str, str]:
    """The query string as one value per key (metrics may repeat and are joined)."""
    args: dict[str, str] = {}
    for raw_key, values in request.args.items():
        key = raw_key.decode("utf-8", "replace")
        decoded = [v.decode("utf-8", "replace") for v in values]
        if key not in QUERY_KEYS:
            raise ProtocolError(
                "bad_message", f"export: unknown parameter {key[:64]!r}; known: {', '.join(sorted(QUERY_KEYS))}"
            )
        args[key] = ",".join(decoded) if key == "metrics" else decoded[-1]
    return args


def plan_export(history: HistoryQueries, args: dict[str, str]) -> ExportPlan:
    """Check an export request against history's rules; ProtocolError if bad."""
    fmt = args.get("format", "csv").lower()
    if fmt not in FORMATS:
        raise ProtocolError("bad_message", "export: 'format' must be 'csv' or 'json'")
    if "max_points" in args and "resolution" in args:
        raise ProtocolError("bad_message", "export: give 'max_points' or 'resolution', not both")
    data: dict[str, Any] = {}
    if "metrics" in args:
        data["metrics"] = split_selectors(args["metrics"])
    for key in ("from", "to", "host"):
        if key in args:
            data[key] = _number_or_text(args[key])
    limit = history.settings.max_history_points
    if "max_points" in args:
        try:
            data["max_points"] = int(args["max_points"])
        except ValueError:
            raise ProtocolError("bad_message", "export: 'max_points' must be an integer") from None
    else:
        data["max_points"] = limit  # full resolution within the limit
    query = _validated(history, data)
    span = max(1, query.to_ms - query.from_ms)
    raw_ms = int(history.interval * 1000)
    if "resolution" in args:
        bucket_ms = _resolution_ms(args["resolution"])
        if math.ceil(span / max(bucket_ms, raw_ms)) > limit:
            raise ProtocolError(
                "too_large",
                f"export: at most {limit} points per metric; choose a coarser 'resolution' or a shorter range",
            )
    else:
        bucket_ms = math.ceil(span / query.max_points)
    return ExportPlan(query, max(raw_ms, bucket_ms), fmt)


def _validated(history: HistoryQueries, data: dict) -> HistoryQuery:
    try:
        return history.validate(data)
    except ProtocolError as e:
        # The rules are history's; the message names the request the user sent.
        raise ProtocolError(e.code, e.message.replace("history:", "export:", 1)) from None


def _resolution_ms(text: str) -> int:
    try:
        seconds = parse_duration(text)
    except (ValueError, TypeError):
        seconds = float("nan")
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 3650 * 86400:
        raise ProtocolError("bad_message", "export: 'resolution' must be a duration such as '10s', '1m' or '1h'")
    return max(1, int(seconds * 1000))


def _number_or_text(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def csv_rows(host: str, metric: str, points: list[dict]) -> bytes:
    """One CSV line per bucket (see the module docstring for the columns)."""
    prefix = f"{_csv_field(host)},{_csv_field(metric)},"
    return "".join(
        f"{prefix}{iso_ms(p['t'])},{p['t']},{_number(p['avg'])},{_number(p['min'])},{_number(p['max'])},{p['count']}\r\n"
        for p in points
    ).encode("utf-8")


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _number(value: float) -> str:
    # repr keeps every digit, so the CSV reads back to the same float.
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@implementer(IPushProducer)
class PageGate:
    """The request's push producer: paused while the transport's buffer is
    full, stopped when the client goes away. The writer waits on `ready()`
    before fetching the next page."""

    def __init__(self) -> None:
        self.paused = False
        self.stopped = False
        self._waiting: list[Deferred] = []

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self._release()

    def stopProducing(self) -> None:
        self.stopped = True
        self._release()

    def ready(self) -> Deferred:
        d: Deferred = Deferred()
        if self.paused and not self.stopped:
            self._waiting.append(d)
        else:
            d.callback(None)
        return d

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(None)


async def link_principal(tokens: TokenCheck, users: SessionCheck | None, request: Request, what: str) -> Principal:
    """Who asks, for a route a plain link may open (export, process
    look-back): a bearer access token, or else the dashboard's session
    cookie; agents' tokens are refused."""
    if request.getHeader(b"authorization") is None and request.getCookie(REFRESH_COOKIE) and users is not None:
        try:
            principal = await users.session_principal(request.getCookie(REFRESH_COOKIE).decode("latin-1"))
        except AuthError as e:
            raise ProtocolError("unauthorized", str(e)) from None
    else:
        principal = bearer_principal(tokens, request)
    if not principal.may("viewer"):
        raise ProtocolError("forbidden", f"{what} needs a viewer, operator or admin token (agents only publish)")
    return principal


class ExportResource(JsonLeaf):
    """GET /api/export: authenticated like the other /api routes (a bearer
    access token, or the dashboard's session cookie so a plain link or
    download button works); agent tokens are refused."""

    isLeaf = True

    def __init__(
        self, tokens: TokenCheck, history: HistoryQueries, users: SessionCheck | None, *, page_points: int | None = None
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.history = history
        self.users = users
        self.page_points = page_points or DEFAULT_PAGE_POINTS
        self.running = 0  # exports streaming now

    def render_GET(self, request: Request) -> Any:
        Deferred.fromCoroutine(self._serve(request)).addErrback(
            lambda f: log.failure("export failed on {uri}", f, uri=request.uri)
        )
        return NOT_DONE_YET

    async def _principal(self, request: Request) -> Principal:
        return await link_principal(self.tokens, self.users, request, "export")

    async def _serve(self, request: Request) -> None:
        gate = PageGate()
        request.notifyFinish().addErrback(lambda _: gate.stopProducing())
        try:
            await self._principal(request)
            plan = plan_export(self.history, query_arguments(request))
            plan, first = await self._first_page(plan)
        except ProtocolError as e:
            return self._fail(request, gate, HTTP_STATUS_FOR_CODE[e.code], error_body(e.code, e.message))
        except StoreUnavailable:
            return self._fail(
                request, gate, 503, error_body("unavailable", "the store is unavailable; try again shortly")
            )
        except Exception:
            log.failure("internal error on {method} {path}", method=request.method, path=request.path)
            return self._fail(request, gate, 500, error_body("internal", "internal error"))
        if gate.stopped:
            return  # the client went away while the first page was read
        self._start(request, plan)
        request.registerProducer(gate, True)
        self.running += 1
        try:
            await self._stream(request, plan, gate, first)
        except Exception:
            # Headers are gone: the only honest signal left is a cut stream
            # (no final chunk), which clients report as an incomplete body.
            log.failure("export of {metrics} stopped part-way", metrics=plan.query.metrics)
            if not gate.stopped:
                request.unregisterProducer()
                request.channel.loseConnection()
            return
        finally:
            self.running -= 1
        # A stopped gate means the client went away: twisted.web has already
        # dropped the request's channel, there is nothing to finish.
        if not gate.stopped:
            request.unregisterProducer()
            request.finish()

    async def _first_page(self, plan: ExportPlan) -> tuple[ExportPlan, dict]:
        """The first metric's first page, fetched before the 200 goes out so
        a store outage is still a 503. A range that starts beyond raw
        retention is answered from a rollup tier, whose buckets are never
        finer than a minute (an hour beyond the 1-minute retention): the
        plan takes that bucket, as `history` would for the whole range."""
        result = await self._page(plan, plan.query.metrics[0], *plan.pages(self.page_points)[0])
        if result.tier != "raw" and plan.bucket_ms < result.bucket_ms:
            plan = replace(plan, bucket_ms=result.bucket_ms)  # a minute, or an hour past the 1-minute retention
            result = await self._page(plan, plan.query.metrics[0], *plan.pages(self.page_points)[0])
        return plan, result.series

    def _fail(self, request: Request, gate: PageGate, status: int, body: dict) -> None:
        if gate.stopped:
            return  # the client went away while we checked
        request.write(write_json(request, status, body))
        request.finish()

    def _start(self, request: Request, plan: ExportPlan) -> None:
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", FORMATS[plan.format])
        request.setHeader(b"Cache-Control", b"no-store")
        name = f"dashd-{plan.query.host}-{iso_ms(plan.query.from_ms)}.{plan.format}".replace(":", "")
        safe = "".join(c if (c.isascii() and c.isalnum()) or c in "-._" else "_" for c in name)
        request.setHeader(b"Content-Disposition", f'attachment; filename="{safe}"'.encode("ascii"))
        _headers(request)

    async def _page(self, plan: ExportPlan, metric: str, start: int, end: int, points: int) -> Any:
        return await self.history.stored.history(
            plan.query.host, [metric], start, end, points, int(self.history.interval * 1000)
        )

    async def _stream(self, request: Request, plan: ExportPlan, gate: PageGate, first: dict) -> None:
        query = plan.query
        if plan.format == "csv":
            request.write(CSV_HEADER)
        else:
            request.write(
                orjson.dumps(
                    {
                        "host": query.host,
                        "from": iso_ms(query.from_ms),
                        "to": iso_ms(query.to_ms),
                        "bucket_ms": plan.bucket_ms,
                    }
                )[:-1]
                + b',"series":{'
            )
        pages = plan.pages(self.page_points)
        for index, metric in enumerate(query.metrics):
            if plan.format == "json":
                request.write((b"," if index else b"") + orjson.dumps(metric) + b":[")
            wrote_point = False
            for number, window in enumerate(pages):
                await gate.ready()
                if gate.stopped:
                    return
                series = first if index == 0 and number == 0 else (await self._page(plan, metric, *window)).series
                points = series.get(metric, [])
                if not points:
                    continue
                if plan.format == "csv":
                    request.write(csv_rows(query.host, metric, points))
                else:
                    body = b",".join(orjson.dumps(p) for p in points)
                    request.write((b"," if wrote_point else b"") + body)
                    wrote_point = True
            if plan.format == "json":
                request.write(b"]")
        if plan.format == "json":
            request.write(b"}}")
