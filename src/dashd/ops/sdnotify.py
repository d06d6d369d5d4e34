"""systemd's service notification protocol (sd_notify(3)) without
python-systemd: a datagram to the AF_UNIX socket named by $NOTIFY_SOCKET.

With `Type=notify` in the unit, dashd says READY=1 once the store answered
and the listeners are up, STOPPING=1 when it begins a clean stop, and, when
the unit sets WatchdogSec=, WATCHDOG=1 every half watchdog period while the
collector keeps ticking, so systemd restarts a daemon whose sampling loop
died or whose reactor is stuck. Outside systemd (no NOTIFY_SOCKET) all of
this is a no-op.
"""

from __future__ import annotations

import os
import socket
from typing import Callable, Mapping

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

MICROSECOND = 1e-6


class SystemdNotifier:
    """Sends sd_notify assignments ("READY=1", "STATUS=...") to one socket."""

    def __init__(self, address: str | bytes | None, watchdog_interval: float | None = None) -> None:
        self.address = address
        # Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None.
        self.watchdog_interval = watchdog_interval

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None, pid: int | None = None) -> SystemdNotifier:
        """NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as systemd sets them."""
        environ = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        return cls(_socket_address(environ.get("NOTIFY_SOCKET", "")), _watchdog_interval(environ, pid))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one datagram; True when it was sent. Never raises: a daemon
        must not fail because its supervisor went away."""
        if self.address is None:
            return False
        payload = "\n".join(assignments).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # never wait on the reactor thread
                sock.connect(self.address)
                sock.send(payload)
            return True
        except OSError as e:
            log.warn("sd_notify to {address} failed: {error}", address=self.address, error=e)
            return False

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def _socket_address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode("utf-8")  # Linux abstract namespace
    if value.startswith("/"):
        return value
    return None  # unset, or a form we do not speak (vsock:)


def _watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID")
    if usec <= 0 or (watchdog_pid and watchdog_pid != str(pid)):
        return None
    return usec * MICROSECOND / 2


class WatchdogService(Service):
    """Pings the watchdog every `notifier.watchdog_interval` while `healthy()`
    says so; a missed ping is systemd's cue to restart the daemon."""

    def __init__(self, notifier: SystemdNotifier, clock: IReactorTime, healthy: Callable[[], bool]) -> None:
        self.notifier = notifier
        self.clock = clock
        self.healthy = healthy
        self._loop: LoopingCall | None = None
        self._unhealthy_logged = False

    def startService(self) -> None:
        super().startService()
        if self.notifier.watchdog_interval is None or not self.notifier.enabled:
            return
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self.clock
        self._loop.start(self.notifier.watchdog_interval, now=True).addErrback(
            lambda f: log.failure("watchdog loop stopped", f)
        )

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return super().stopService()

    def _tick(self) -> None:
        # Guarded: an exception escaping a LoopingCall stops it for good,
        # and a silent watchdog means a restart.
        try:
            if self.healthy():
                self._unhealthy_logged = False
                self.notifier.watchdog()
            elif not self._unhealthy_logged:
                self._unhealthy_logged = True
                log.error("not pinging the systemd watchdog: the collector has stopped ticking")
        except Exception:
            log.failure("watchdog tick failed")
