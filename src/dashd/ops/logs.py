"""JSON log lines for log shippers (journald, Docker, Loki, Elasticsearch...).

Two ways to get them:

- `twistd dashd --log-format json` (or `log_format = json`, or
  `DASHD_LOG_FORMAT=json`): makeService hands twistd this observer through
  the application's ILogObserver component, so it replaces twistd's text
  observer and writes where twistd would have (stdout with --nodaemon, else
  --logfile, default twistd.log).
- `twistd --logger dashd.ops.logs.json_observer dashd ...`: twistd's own switch;
  always writes to stdout (use it with --nodaemon).

Each line is one JSON object:

    {"time": "2026-11-26T10:31:00.123Z", "level": "info", "namespace": "dashd.tap",
     "system": "-", "message": "listening on tcp:8080 (0.0.0.0:8080)",
     "event": "listening on {endpoint} ({host}:{port})",
     "fields": {"endpoint": "tcp:8080", "host": "0.0.0.0", "port": 8080}}

`event` is the format string (stable, for grouping), `fields` its values;
a logged failure adds `traceback`. Nothing is added that the text log does
not also show: secrets stay out of both because dashd never logs them.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any, Mapping

import orjson
from twisted.logger import FileLogObserver, formatEvent
from twisted.python import logfile

# Event keys that are Twisted's bookkeeping (legacy twisted.python.log events
# carry some without the log_ prefix), not format fields.
_LEGACY_KEYS = frozenset({"message", "isError", "time", "system", "format", "why", "failure", "printed"})
_MAX_FIELD_CHARS = 2000


def _iso_utc(seconds: float) -> str:
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def _fallback(value: Any) -> str:
    """Values JSON has no type for are written as their repr (as the text log does)."""
    text = repr(value)
    return text if len(text) <= _MAX_FIELD_CHARS else text[:_MAX_FIELD_CHARS] + "..."


def event_as_json(event: Mapping[str, Any]) -> str:
    """One twisted.logger event as a single-line JSON object (no newline)."""
    level = event.get("log_level")
    system = event.get("log_system", event.get("system"))
    record: dict[str, Any] = {
        "time": _iso_utc(event.get("log_time") or time.time()),
        "level": getattr(level, "name", "info") if level is not None else ("error" if event.get("isError") else "info"),
        "namespace": event.get("log_namespace", "-"),
    }
    if system is not None:
        record["system"] = str(system)
    record["message"] = formatEvent(event)  # type: ignore[arg-type]
    if isinstance(event.get("log_format"), str) and event["log_format"] != "{log_text}":  # not legacy log.msg
        record["event"] = event["log_format"]
    fields = {key: value for key, value in event.items() if not key.startswith("log_") and key not in _LEGACY_KEYS}
    if fields:
        record["fields"] = fields
    failure = event.get("log_failure")
    if failure is not None:
        try:
            record["traceback"] = failure.getTraceback()
        except Exception:
            record["traceback"] = repr(failure)
    try:
        return orjson.dumps(record, default=_fallback, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
    except (TypeError, ValueError):
        # A field orjson refuses even through the fallback (an integer over
        # 64 bits, say): drop the fields, keep the line.
        record.pop("fields", None)
        return orjson.dumps(record, default=_fallback).decode("utf-8")


def json_file_observer(out: IO[str]) -> FileLogObserver:
    """An observer writing one JSON object per line to `out`."""
    return FileLogObserver(out, lambda event: event_as_json(event) + "\n")


def json_observer() -> FileLogObserver:
    """`twistd --logger dashd.ops.logs.json_observer`: JSON lines on stdout.

    sys.stdout is taken now, before twistd redirects it into the log."""
    return json_file_observer(sys.stdout)


def observer_for_twistd(server_options: Mapping[str, Any] | None) -> FileLogObserver:
    """The JSON observer writing where twistd's text observer would have:
    stdout for --nodaemon without --logfile (or with --logfile -), otherwise
    the --logfile path (default twistd.log), rotated as twistd rotates it."""
    options = server_options or {}
    path = options.get("logfile") or ""
    if path == "-" or (not path and options.get("nodaemon", True)):
        return json_observer()
    return json_file_observer(logfile.LogFile.fromFullPath(path or "twistd.log"))  # type: ignore[arg-type]
