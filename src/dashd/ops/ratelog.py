"""Log lines an attacker can trigger at will (failed or throttled logins,
refused connections) are rate-limited: the first few of each kind per
window are written as usual, the rest only counted, and one summary line
says how many were left out. A flood then costs a few lines a minute, not
one line per request."""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

SECOND = 1.0
MINUTE = 60 * SECOND

# C0 controls (CR, LF, ESC...), DEL and C1 controls: what can forge a log
# line or drive a terminal. Unicode line separators too.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object, limit: int = 200) -> str:
    """`value` as one safe log token: control characters escaped (\\n, \\x1b),
    cut to `limit` characters. For anything that came from a client."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class SummarizedLog:
    """`per_window` lines of each kind per `window`; then a count, logged
    once when the window ends."""

    def __init__(self, log: Logger, clock: IReactorTime, *, per_window: int = 10, window: float = MINUTE) -> None:
        self._log = log
        self._clock = clock
        self.per_window = per_window
        self.window = window
        self._written: dict[str, int] = {}
        self._suppressed: dict[str, int] = {}
        self._timer: IDelayedCall | None = None

    def warn(self, kind: str, format: str, **fields: Any) -> bool:
        """Log at warn level unless `kind` is over its budget; True if written."""
        return self._emit(self._log.warn, kind, format, fields)

    def info(self, kind: str, format: str, **fields: Any) -> bool:
        """Log at info level unless `kind` is over its budget; True if written."""
        return self._emit(self._log.info, kind, format, fields)

    def _emit(self, emit: Any, kind: str, format: str, fields: dict) -> bool:
        if self._timer is None:
            self._timer = self._clock.callLater(self.window, self._end_window)
        written = self._written.get(kind, 0)
        if written < self.per_window:
            self._written[kind] = written + 1
            emit(format, **fields)
            return True
        self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
        return False

    def _end_window(self) -> None:
        self._timer = None
        for kind, count in sorted(self._suppressed.items()):
            self._log.warn(
                "{count} more '{kind}' lines in the last {window:g}s were not logged (rate limit)",
                count=count,
                kind=kind,
                window=self.window,
            )
        self._written.clear()
        self._suppressed.clear()

    def stop(self) -> None:
        """Flush the summary now (at shutdown) and cancel the timer."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._suppressed:
            self._end_window()
