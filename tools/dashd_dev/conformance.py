"""`dashd conformance-echo`: a TEST TOOL, never part of the daemon.

It serves dashd's own WebSocket stack -- the same Autobahn factory options
(`dashd.wire.protocol.protocol_options`), the same deflate negotiation
(server_no_context_takeover, declined unusable offers), the same protocol
class and the same send path (`dashd.wire.fastpath`: one frame, one compressed
copy, direct socket writes) behind the same twisted.web resource -- as an
echo server, so an external conformance suite (the Autobahn testsuite's
`fuzzingclient`, for one) can exercise it:

    dashd conformance-echo --listen tcp:9001:interface=127.0.0.1

Every path echoes each message back to its sender (text as text, binary as
binary). The path `/broadcast` instead sends each message to every client
connected to `/broadcast`, sender included, through one shared
FramedMessage: the daemon's fan-out path, with compressed and uncompressed
clients side by side.

There is no authentication, no session, no stream: only the transport
layer. `twistd dashd` never starts it.
"""

from __future__ import annotations

import argparse
from typing import Any

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.web.server import Site

from dashd.settings import Settings
from dashd.wire.fastpath import FramedMessage, send_message
from dashd.wire.protocol import DashboardServerProtocol, protocol_options

log = Logger()

BROADCAST_PATH = "/broadcast"


class EchoProtocol(DashboardServerProtocol):
    """dashd's protocol class with the application replaced by an echo.
    Handshake details (extension parsing) and the send path are inherited."""

    _broadcast = False

    def onConnect(self, request) -> Any:
        self._broadcast = request.path == BROADCAST_PATH
        return None

    def onOpen(self) -> None:
        if self._broadcast:
            self.factory.group.add(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        message = FramedMessage(payload, isBinary)
        targets = list(self.factory.group) if self._broadcast else [self]
        for target in targets:
            target.send_framed(message)

    def send_framed(self, message: FramedMessage) -> None:
        if self.factory.direct_writes:
            send_message(self, message)
        elif self.state == self.STATE_OPEN:
            self.sendMessage(message.payload, message.binary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.group.discard(self)


class EchoFactory(WebSocketServerFactory):
    protocol = EchoProtocol
    direct_writes: bool = True

    def __init__(self, settings: Settings, direct_writes: bool = True) -> None:
        super().__init__()
        self.direct_writes = direct_writes
        self.group: set[EchoProtocol] = set()
        self.setProtocolOptions(**protocol_options(settings))
        self.server = "dashd"


def build_echo_site(settings: Settings, direct_writes: bool = True) -> Site:
    """A twisted.web Site whose every path is the echo WebSocket resource
    (the daemon serves its WebSockets through twisted.web too)."""
    site = Site(WebSocketResource(EchoFactory(settings, direct_writes)))
    site.displayTracebacks = False
    return site


def listen_echo(reactor: Any, description: str, settings: Settings, direct_writes: bool = True) -> Deferred:
    """Listen on a Twisted endpoint string; fires with the IListeningPort."""
    return serverFromString(reactor, description).listen(build_echo_site(settings, direct_writes))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        default="tcp:9001:interface=127.0.0.1",
        help="Twisted endpoint string (default tcp:9001:interface=127.0.0.1)",
    )
    parser.add_argument(
        "--max-message-size",
        default=None,
        help="largest inbound message, e.g. 16MiB (default: the daemon's max_message_size)",
    )
    parser.add_argument(
        "--max-frame-size", default=None, help="largest inbound frame (default: the daemon's max_frame_size)"
    )
    parser.add_argument("--no-compression", action="store_true", help="do not negotiate permessage-deflate")
    parser.add_argument(
        "--stock", action="store_true", help="Autobahn's own send path instead of dashd.wire.fastpath (to compare)"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    """The `dashd conformance-echo` command: listen until interrupted."""
    import sys

    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    changes: dict[str, Any] = {}
    if args.max_message_size:
        from dashd.settings import parse_size

        changes["max_message_size"] = parse_size(args.max_message_size)
    if args.max_frame_size:
        from dashd.settings import parse_size

        changes["max_frame_size"] = parse_size(args.max_frame_size)
    if args.no_compression:
        changes["compression"] = False
    settings = settings.replace(**changes)

    def listening(port: IListeningPort) -> None:
        address = port.getHost()
        print(
            f"dashd conformance echo server (a test tool, not the daemon) on "
            f"ws://{address.host}:{address.port}/ ({BROADCAST_PATH} broadcasts); "
            f"send path: {'Autobahn' if args.stock else 'dashd.wire.fastpath'}",
            flush=True,
        )

    def failed(failure) -> None:
        print(f"dashd: cannot listen on {args.listen}: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()

    def start() -> None:
        listen_echo(reactor, args.listen, settings, direct_writes=not args.stock).addCallbacks(listening, failed)

    reactor.callWhenRunning(start)
    reactor.run()
    return 0
