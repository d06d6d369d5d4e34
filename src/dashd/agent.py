"""`dashd agent`: the collector alone, pushing its samples to a hub's
`/ingest` endpoint (see dashd.wire.ingest and docs/protocol.md, *Agents*).

    dashd agent --hub ws://hub:8080/ingest --token TOKEN [--host-name NAME] [--interval 1]

This module is the command and the service tree: the buffer and batching
policy are dashd.collect.agent, the WebSocket client dashd.wire.agent_client.
The client reconnects through a ClientService with exponential back-off.
"""

from __future__ import annotations

import argparse
import socket
import sys
from typing import Any

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from dashd.collect.agent import DEFAULT_BATCH_INTERVAL, DEFAULT_BUFFER, SHUTDOWN_FLUSH, SampleBuffer, Uplink
from dashd.collect.collector import CollectorService, MetricsCollector, PsutilReader, Sample
from dashd.stream.bus import METRICS_TOPIC, InMemoryBus
from dashd.wire.agent_client import IngestClientFactory, hub_endpoint

log = Logger()


class AgentService(MultiService):
    """Collector -> buffer -> uplink. Stopping samples no more, then sends
    what it can within SHUTDOWN_FLUSH before closing the connection."""

    def __init__(
        self,
        collector: CollectorService,
        bus: InMemoryBus,
        buffer: SampleBuffer,
        uplink: Uplink,
        connection: ClientService,
        clock: IReactorTime,
        shutdown_flush: float = SHUTDOWN_FLUSH,
    ) -> None:
        super().__init__()
        self.collector = collector
        self.buffer = buffer
        self.uplink = uplink
        self.connection = connection
        self.clock = clock
        self.shutdown_flush = shutdown_flush
        bus.subscribe(METRICS_TOPIC, self._on_sample)
        for child in (uplink, connection, collector):
            child.setServiceParent(self)

    def _on_sample(self, topic: str, sample: Any) -> None:
        if isinstance(sample, Sample):
            sample = Sample(
                sample.host, sample.timestamp_ms, {k: v for k, v in sample.metrics.items() if k != "active_connections"}
            )
            self.buffer.add(sample)
            self.uplink.sample_added()

    def stopService(self) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        Service.stopService(self)
        await defer.maybeDeferred(self.collector.stopService)
        await self.uplink.flush(self.shutdown_flush)
        if self.uplink.protocol is not None:
            self.uplink.protocol.close(1000, "agent stopping")
        await defer.maybeDeferred(self.connection.stopService)
        await defer.maybeDeferred(self.uplink.stopService)
        if len(self.buffer):
            log.warn(
                "agent stopped: {taken} samples taken, {n} not confirmed by the hub (lost)",
                taken=self.buffer.added,
                n=len(self.buffer),
            )
        else:
            log.info("agent stopped: {taken} samples taken, all confirmed by the hub", taken=self.buffer.added)


def build_agent(
    reactor: Any,
    *,
    hub: str,
    token: str,
    host: str,
    interval: float = 1.0,
    batch_interval: float = DEFAULT_BATCH_INTERVAL,
    buffer_size: int = DEFAULT_BUFFER,
    ca_file: str | None = None,
    disk_path: str = "/",
    max_retry_delay: float = 30.0,
    reader: Any = None,
) -> AgentService:
    """The agent's service tree (not started)."""
    import txaio

    txaio.use_twisted()
    txaio.set_global_log_level("info")
    bus = InMemoryBus()
    buffer = SampleBuffer(buffer_size)
    uplink = Uplink(buffer, reactor, batch_interval=batch_interval)
    factory = IngestClientFactory(hub, token, uplink)
    connection = ClientService(
        hub_endpoint(reactor, hub, ca_file),
        factory,
        retryPolicy=backoffPolicy(initialDelay=0.5, maxDelay=max_retry_delay),
        clock=reactor,
    )
    collector = CollectorService(
        MetricsCollector(reader or PsutilReader(disk_path), host, lambda: 0), bus, reactor, interval
    )
    return AgentService(collector, bus, buffer, uplink, connection, reactor)


def token_subject(token: str) -> str | None:
    """The `sub` of a JWT, read without verifying it (only the hub has the key)."""
    try:
        import jwt

        claims = jwt.decode(token, options={"verify_signature": False})
    except Exception:
        return None
    subject = claims.get("sub")
    return subject if isinstance(subject, str) else None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", required=True, help="the hub's ingest URL, ws://HOST:PORT/ingest or wss://...")
    parser.add_argument(
        "--token",
        default=None,
        help="agent token (dashd token --role agent --subject HOST); default: $DASHD_AGENT_TOKEN",
    )
    parser.add_argument("--host-name", default=None, help="host name of the samples (default: the token's subject)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples (0.1 to 60, default 1)")
    parser.add_argument(
        "--batch-interval",
        type=float,
        default=DEFAULT_BATCH_INTERVAL,
        help="seconds between batches sent to the hub (default 1)",
    )
    parser.add_argument(
        "--buffer",
        type=int,
        default=DEFAULT_BUFFER,
        help=f"samples kept while the hub is away (default {DEFAULT_BUFFER})",
    )
    parser.add_argument("--ca-file", default=None, help="PEM CA certificate to trust for a wss:// hub (self-signed)")
    parser.add_argument("--disk-path", default="/", help="filesystem whose usage is reported (default /)")


def run(args: argparse.Namespace) -> int:
    """`dashd agent`: runs until SIGTERM/SIGINT, then flushes and exits."""
    import os

    from twisted.internet import task
    from twisted.logger import globalLogBeginner, textFileLogObserver

    token = args.token or os.environ.get("DASHD_AGENT_TOKEN", "")
    if not token:
        print("dashd agent: give --token or set DASHD_AGENT_TOKEN", file=sys.stderr)
        return 2
    if not 0.1 <= args.interval <= 60 or not 0.05 <= args.batch_interval <= 60 or args.buffer < 1:
        print(
            "dashd agent: --interval must be 0.1 to 60, --batch-interval 0.05 to 60, --buffer at least 1",
            file=sys.stderr,
        )
        return 2
    subject = token_subject(token)
    host = args.host_name or subject or socket.gethostname()
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    if subject is not None and host != subject:
        log.warn(
            "--host-name {host} differs from the token's subject {subject}: the hub will refuse the samples",
            host=host,
            subject=subject,
        )

    def main(reactor: Any) -> defer.Deferred:
        try:
            agent = build_agent(
                reactor,
                hub=args.hub,
                token=token,
                host=host,
                interval=args.interval,
                batch_interval=args.batch_interval,
                buffer_size=args.buffer,
                ca_file=args.ca_file,
                disk_path=args.disk_path,
            )
        except (ValueError, OSError) as e:
            print(f"dashd agent: {e}", file=sys.stderr)
            raise SystemExit(2) from None
        log.info(
            "dashd agent for {host} sending to {hub} every {interval:g}s",
            host=host,
            hub=args.hub,
            interval=args.interval,
        )
        agent.startService()
        reactor.addSystemEventTrigger("before", "shutdown", agent.stopService)
        return defer.Deferred()  # runs until the reactor is stopped (SIGTERM, SIGINT)

    task.react(main)
    return 0
