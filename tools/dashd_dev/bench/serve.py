"""`dashd bench serve`: dashd's real service tree fed synthetic samples."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from typing import Any

from dashd_dev.bench.procs import emit
from dashd_dev.bench.samples import BENCH_HOST, SyntheticSampler


def serve(args: argparse.Namespace) -> int:
    """dashd's service tree on 127.0.0.1 with the synthetic sampler; stdin
    takes `rate HZ`, `stats`, `profile-start`, `profile-stop PATH`, `quit`."""
    if args.reuse_port:
        # Several processes on one port (the multi-process experiment): the
        # kernel spreads connections over their sockets. Handed to Twisted
        # the systemd way, as fd 3, before Twisted reads the environment.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", args.port))
        listener.listen(4096)
        listener.setblocking(False)
        os.dup2(listener.fileno(), 3)
        os.set_inheritable(3, False)
        os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="dashd")
        assert "twisted.internet.endpoints" not in sys.modules
    from twisted.internet import reactor, stdio
    from twisted.logger import (
        FileLogObserver,
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        formatEventAsClassicLogText,
        globalLogBeginner,
    )
    from twisted.protocols.basic import LineReceiver

    from dashd.settings import load_settings
    from dashd.tap import build_daemon
    from dashd.timefmt import now_ms
    from dashd.wire import fastpath
    from dashd.wire.protocol import DashboardServerFactory

    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(FileLogObserver(sys.stderr, lambda e: formatEventAsClassicLogText(e)), [predicate])],
        redirectStandardIO=False,
    )
    if args.stock:
        DashboardServerFactory.direct_writes = False
    interface = "interface=127.0.0.1"
    values: dict[str, Any] = {
        "state_dir": args.state_dir,
        "listen": f"tcp:{args.port}:{interface}:backlog=4096",
        "host_name": BENCH_HOST,
        "max_connections": 200_000,
        "max_connections_per_ip": 200_000,
        "max_rate_hz": 100,
        "static": os.path.join(args.state_dir, "no-frontend"),
        "collectors": "host",  # the fan-out is measured with the synthetic samples alone
    }
    if args.reuse_port:
        values["listen"] = "systemd:domain=INET:index=0"
    if args.tls_key:
        values["listen"] = f"tcp:0:{interface}"
        values["tls_listen"] = f"ssl:{args.port}:privateKey={args.tls_key}:certKey={args.tls_cert}:{interface}"
    settings = load_settings(values, environ={})
    daemon = build_daemon(settings, reactor)
    sampler = SyntheticSampler(BENCH_HOST, now_ms)
    collector = daemon.collector
    # Bench-only seam: the real CollectorService, bus and hub, fed synthetic
    # samples instead of psutil readings.
    collector.sample_with(sampler)  # the real service tree, fed synthetic samples
    collector.interval = 1.0 / args.rate
    profiler: list = []

    class Control(LineReceiver):
        delimiter = b"\n"

        def lineReceived(self, line: bytes) -> None:
            command, _, value = line.decode().strip().partition(" ")
            if command == "rate":
                hz = float(value)
                collector.set_interval(1.0 / hz)
            elif command == "stats":
                emit(
                    {
                        "event": "stats",
                        "published": sampler.count,
                        "seq": daemon.hub.seq,
                        "ticks_coalesced": collector.ticks[1],
                        "at": time.monotonic(),
                        "clients": len(daemon.connections),
                        "write_stats": fastpath.stats.as_dict(),
                        "fanout_loop": getattr(daemon.hub.writer, "loop", None),
                    }
                )
            elif command == "profile-start":
                import cProfile

                profiler[:] = [cProfile.Profile()]
                profiler[0].enable()
            elif command == "profile-stop" and profiler:
                profiler[0].disable()
                profiler[0].dump_stats(value)
                emit({"event": "profile", "path": value})
            elif command == "quit":
                shutdown()

        def connectionLost(self, reason=None) -> None:
            shutdown()

    stopping: list = []

    def shutdown() -> None:
        if stopping:
            return
        stopping.append(True)
        for session in list(daemon.connections):
            session.sink.dropConnection(abort=True)
        reactor.callLater(0.2, reactor.stop)

    def started() -> None:
        daemon.startService()
        listener = daemon.listeners[0]
        for candidate in daemon.listeners:
            if candidate.description.startswith("ssl" if args.tls_key else "tcp"):
                listener = candidate
        listener.ready.addCallback(
            lambda port: emit({"event": "ready", "port": port.getHost().port, "pid": os.getpid()})
        )
        stdio.StandardIO(Control())

    reactor.callWhenRunning(started)
    reactor.run()
    return 0
