"""Work to do when the daemon stops, before clients are closed: parts built
below the root (listeners' refusal logs, /ingest connections, the user
directory, the extra collectors) register here instead of appending to a
list on a shared object; dashd.tap.DashdService runs them in order."""

from __future__ import annotations

from typing import Callable

from twisted.logger import Logger

log = Logger()


class ShutdownHooks:
    """Callables run once, in registration order, when the daemon stops."""

    def __init__(self) -> None:
        self._hooks: list[Callable[[], object]] = []

    def add(self, hook: Callable[[], object]) -> None:
        self._hooks.append(hook)

    def run(self) -> None:
        for hook in self._hooks:
            try:
                hook()
            except Exception:
                log.failure("a shutdown hook failed")
