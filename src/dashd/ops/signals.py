"""Repeated stop signals (part of the ops layer).

Twisted's SIGTERM/SIGINT handlers call `reactor.stop()`; a second signal
while the shutdown runs (Ctrl-C pressed twice, a supervisor repeating
SIGTERM) calls it again and logs a critical ReactorNotRunning traceback.
These wrappers pass the first stop signal on and answer any later one with
one log line: the shutdown in progress continues (it has its own bounds:
client close wait, database deadlines)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, Callable

from twisted.logger import Logger

log = Logger()

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """Wraps the reactor's stop-signal handlers; see the module docstring."""

    def __init__(self) -> None:
        self.stopping = False

    def install(self, reactor: Any) -> None:
        """Call once the reactor runs (its own handlers are installed then)."""
        reactor.addSystemEventTrigger("before", "shutdown", self._shutdown_began)
        for number in STOP_SIGNALS:
            previous = signal.getsignal(number)
            if callable(previous):
                signal.signal(number, self._wrap(previous))

    def _shutdown_began(self) -> None:
        self.stopping = True

    def _wrap(self, previous: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], None]:
        def handler(number: int, frame: FrameType | None) -> None:
            if self.stopping:
                log.info("received {signal} again: already shutting down", signal=signal.Signals(number).name)
                return
            self.stopping = True
            previous(number, frame)

        return handler
