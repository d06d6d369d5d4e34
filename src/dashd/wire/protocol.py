"""The WebSocket server (the original specification's WebSocketServer): thin
Autobahn protocol and factory classes. They check the handshake, turn frames
into ClientSession calls, and implement ClientSink and the push-producer
interface through which the transport reports a full send buffer."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.util import encode_truncate
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.compress_deflate import PerMessageDeflate
from autobahn.websocket.protocol import PreparedMessage
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import tcp
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from dashd.auth.handshake import TokenCheck, bearer_token
from dashd.auth.tokens import AuthError
from dashd.clients.seams import ClientTelemetry
from dashd.clients.session import ClientSession, SessionFactory
from dashd.errors import CLOSE_UNAUTHORIZED, CLOSE_UNSUPPORTED_DATA, HandshakeRefused, ProtocolError
from dashd.ops.ratelog import SummarizedLog, printable
from dashd.ops.shutdown import ShutdownHooks
from dashd.settings import Settings
from dashd.stream.streams import OutboundFrame
from dashd.wire.fastpath import FramedMessage, send_message


class _DeflateAccept(PerMessageDeflateOfferAccept):
    """Tells the client we use server_no_context_takeover even when it did
    not ask (RFC 7692 7.1.1.1 allows it): every message is compressed on its
    own, so no compression state outlives a message."""

    def get_extension_string(self) -> str:
        text = super().get_extension_string()
        if self.no_context_takeover and "server_no_context_takeover" not in text:
            text += "; server_no_context_takeover"
        return text


def accept_deflate(offers: list, window_bits: int, mem_level: int) -> PerMessageDeflateOfferAccept | None:
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            bits = window_bits
            if offer.request_max_window_bits:
                bits = min(bits, offer.request_max_window_bits)
            return _DeflateAccept(offer, no_context_takeover=True, window_bits=bits, mem_level=mem_level)
    return None


@implementer(IPushProducer)
class _FlowControl:
    """Registered with the transport: pause/resume mean the socket's send
    buffer went over / back under its high-water mark."""

    def __init__(self, session: ClientSession) -> None:
        self._session = session

    def pauseProducing(self) -> None:
        self._session.stream.pause()

    def resumeProducing(self) -> None:
        self._session.stream.resume()

    def stopProducing(self) -> None:
        pass


def peer_address(peer: str) -> str:
    """'tcp:127.0.0.1:5000' / 'tcp6:[::1]:5000' -> the address alone."""
    if peer.startswith("tcp4:") or peer.startswith("tcp:") or peer.startswith("tcp6:"):
        rest = peer.split(":", 1)[1]
        host = rest.rsplit(":", 1)[0]
        return host.strip("[]")
    return peer


def client_address(request_peer: str, headers: dict, trusted_proxies: tuple[str, ...]) -> str:
    """The client's address: X-Forwarded-For is believed only from a trusted
    proxy, and then its last untrusted hop is taken."""
    address = peer_address(request_peer)
    if address not in trusted_proxies:
        return address
    forwarded = headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address
    return address


def origin_allowed(origin: str, host_header: str, secure: bool, allowed: tuple[str, ...], public_url: str = "") -> bool:
    if "*" in allowed:
        return True
    origin = origin.rstrip("/").lower()
    if origin in (a.rstrip("/").lower() for a in allowed):
        return True
    if public_url and origin == public_origin(public_url):
        # Behind a TLS-terminating proxy the page is https://<public name>
        # while this listener is plain HTTP: the same-origin default below
        # cannot match it.
        return True
    if not allowed:
        # Default: only the daemon's own origin (the Host the browser dialled).
        scheme = "https" if secure else "http"
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return parts.scheme == scheme and parts.netloc == host_header.lower()
    return False


def public_origin(public_url: str) -> str:
    """'https://Dash.example.com/app' -> 'https://dash.example.com'."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


log = Logger()


class DashboardServerProtocol(WebSocketServerProtocol):
    # Note: `self.log` is Autobahn's txaio logger (level-filtered); dashd's
    # own events go to the module-level `log`.

    session: ClientSession | None = None
    # (transport, socket, fd, compression key) for dashd.wire.broadcast's
    # flat loop, set at open when the connection can take direct writes.
    flat_target: tuple | None = None
    _principal = None
    _handshake_error: str | None = None

    # ----- handshake

    def _parseExtensionsHeader(self, header, removeQuotes=True):
        # Autobahn answers a deflate offer it cannot parse (for example
        # server_max_window_bits=8, which zlib cannot honour) with HTTP 400.
        # RFC 7692 says to decline such an offer: drop it here, so the
        # connection proceeds uncompressed.
        extensions = super()._parseExtensionsHeader(header, removeQuotes)
        usable = []
        for extension, params in extensions:
            if extension == "permessage-deflate":
                try:
                    PerMessageDeflateOffer.parse(params)
                except Exception:
                    log.debug("declining a permessage-deflate offer: {params}", params=params)
                    continue
            usable.append((extension, params))
        return usable

    def onConnect(self, request) -> Any:
        factory: DashboardServerFactory = self.factory
        settings = factory.settings
        headers = request.headers
        address = client_address(request.peer, headers, settings.trusted_proxies)
        origin = headers.get("origin")
        if origin is not None and not origin_allowed(
            origin, headers.get("host", ""), factory.secure, settings.allowed_origins, settings.public_url
        ):
            factory.refusals.info(
                "handshake-origin",
                "refused a handshake from {address}: origin {origin} not allowed",
                address=address,
                origin=printable(origin),
            )
            if factory.telemetry is not None:
                factory.telemetry.auth_failed("origin")
            raise ConnectionDeny(403, "origin not allowed")
        # Clients without an Origin (not browsers) skip the origin check but,
        # like everyone, must authenticate: Bearer header or `auth` message.
        authorization = headers.get("authorization", "")
        try:
            factory.sessions.admit(address)
        except HandshakeRefused as refused:
            factory.refusals.info(
                "handshake-limit",
                "refused a handshake from {address}: {reason}",
                address=address,
                reason=refused.reason,
            )
            raise ConnectionDeny(refused.status, refused.reason) from None
        if authorization:
            token = bearer_token(authorization)
            if token is not None:
                try:
                    self._principal = factory.tokens.verify(token, factory.endpoint)
                except AuthError as e:
                    self._handshake_error = str(e)
            else:
                self._handshake_error = "the Authorization header must be 'Bearer <token>'"
        self.session = factory.sessions(self, factory.endpoint, address)
        return None

    def onOpen(self) -> None:
        session = self.session
        transport = self.transport
        # twisted.web's HTTPChannel registered itself as the transport's
        # producer; the connection is ours now, so is the flow control.
        try:
            transport.unregisterProducer()
        except Exception:
            pass
        transport.registerProducer(_FlowControl(session), True)
        send_buffer = self.factory.settings.send_buffer
        sock = getattr(transport, "socket", None)
        if send_buffer and sock is not None:
            # Caps what the kernel holds for a client that stops reading
            # (autotuning would let it grow to tcp_wmem's max, 4 MiB).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.flat_target = flat_target(self)
        try:
            if self._handshake_error is not None:
                session.open(None)
                self._refuse(self._handshake_error)
            else:
                session.open(self._principal)
        except ProtocolError as error:
            session.fail(error, None)

    def _refuse(self, why: str) -> None:
        telemetry = self.factory.telemetry
        if telemetry is not None:
            telemetry.auth_failed(why)
        self.session.send_error(ProtocolError("unauthorized", why), None)
        self.session.close(CLOSE_UNAUTHORIZED, why[:100])

    # ----- frames

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is None or session.closed:
            return
        if isBinary:
            session.close(CLOSE_UNSUPPORTED_DATA, "text JSON frames only")
            return
        try:
            session.receive(payload)
        except ProtocolError as error:  # raised by authenticate()
            session.fail(error, None)
        except Exception:
            log.failure("internal error on a message from {peer}", peer=session.address)
            session.send_error(ProtocolError("internal", "internal error"), None)

    def onPong(self, payload: bytes) -> None:
        if self.session is not None:
            self.session.touch()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.session is not None:
            self.session.lost()

    # ----- ClientSink

    def send_frame(self, frame: OutboundFrame) -> None:
        if self.state != WebSocketServerProtocol.STATE_OPEN:
            return
        if self.factory.direct_writes:
            # Framed (and, for compressed clients, deflated) once per frame,
            # then shared by every connection it goes to; see dashd.wire.fastpath.
            framed = frame.prepared
            if not isinstance(framed, FramedMessage):
                framed = frame.prepared = FramedMessage(frame.payload)
            send_message(self, framed)
        else:
            prepared = frame.prepared
            if not isinstance(prepared, PreparedMessage):
                prepared = frame.prepared = self.factory.prepareMessage(frame.payload)
            self.sendPreparedMessage(prepared)
        self._count_sent(frame)

    def _count_sent(self, frame: OutboundFrame) -> None:
        """Telemetry: one message of frame.kind written (payload bytes, before compression)."""
        telemetry = self.factory.telemetry
        if telemetry is not None:
            telemetry.frame_sent(frame.kind, len(frame.payload))

    def close(self, code: int, reason: str) -> None:
        # sendClose() only lets applications use 1000 and 3000-4999; the
        # server's protocol-level codes (1001, 1003, 1008, 1009, 1011, 1013)
        # go through sendCloseFrame, which does the same with no such check.
        if self.state == WebSocketServerProtocol.STATE_OPEN:
            self.sendCloseFrame(code, encode_truncate(reason, 123), isReply=False)


def flat_target(protocol: WebSocketServerProtocol) -> tuple | None:
    """What the flat broadcast loop needs of an open connection, or None
    when it cannot take direct writes (TLS and other transports, Autobahn's
    own write path chosen, a compressor with context takeover)."""
    transport = protocol.transport
    if not protocol.factory.direct_writes or type(transport) is not tcp.Server or transport.TLS:
        return None
    compression = protocol._perMessageCompress
    if compression is None:
        key = None
    elif type(compression) is PerMessageDeflate and compression.server_no_context_takeover and compression._is_server:
        key = (compression.server_max_window_bits, compression.mem_level)
    else:
        return None
    return (transport, transport.socket, transport.socket.fileno(), key)


class DashboardServerFactory(WebSocketServerFactory):
    """One per endpoint (/dashboard, /metrics, /notifications) and listener
    kind (secure or not)."""

    protocol = DashboardServerProtocol

    # Send through dashd.wire.fastpath (direct socket writes on plain TCP when
    # nothing is buffered; one shared compressed frame). False keeps
    # Autobahn's own write path: the bench's "stock" mode.
    direct_writes: bool = True

    def __init__(
        self,
        sessions: SessionFactory,
        tokens: TokenCheck,
        settings: Settings,
        clock: IReactorTime,
        shutdown: ShutdownHooks,
        endpoint: str,
        secure: bool = False,
        telemetry: ClientTelemetry | None = None,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.tokens = tokens
        self.settings = settings
        self.telemetry = telemetry
        self.endpoint = endpoint
        self.secure = secure
        self.setProtocolOptions(**protocol_options(settings))
        self.server = "dashd"
        # Refused handshakes are client-triggered: rate-limited log lines.
        self.refusals = SummarizedLog(log, clock)
        shutdown.add(self.refusals.stop)


def protocol_options(settings) -> dict[str, Any]:
    """The Autobahn options every dashd WebSocket factory uses (the daemon's,
    and the conformance echo server's, so a test suite sees the same stack)."""
    options: dict[str, Any] = dict(
        maxMessagePayloadSize=settings.max_message_size,
        maxFramePayloadSize=settings.max_frame_size,
        autoPingInterval=settings.ping_interval or None,
        autoPingTimeout=settings.ping_timeout if settings.ping_interval else None,
        openHandshakeTimeout=10,
        closeHandshakeTimeout=3,
        failByDrop=False,
        echoCloseCodeReason=True,
    )
    if settings.compression:
        window_bits, mem_level = settings.deflate_window_bits, settings.deflate_mem_level
        options["perMessageCompressionAccept"] = lambda offers: accept_deflate(offers, window_bits, mem_level)
    return options
