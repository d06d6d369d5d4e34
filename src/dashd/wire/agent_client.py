"""The agent's WebSocket client to a hub's `/ingest` endpoint: a thin
Autobahn protocol that hands the connection and the hub's messages to the
Uplink (dashd.collect.agent), its factory, and the client endpoint for a
ws:// or wss:// hub URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.logger import Logger

from dashd.collect.agent import Uplink

log = Logger()
KIB = 1024


class IngestClientProtocol(WebSocketClientProtocol):
    """Thin: hands the open connection and the hub's messages to the Uplink."""

    def onOpen(self) -> None:
        self.factory.uplink.opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            return
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warn("the hub sent a frame that is not JSON; ignored")
            return
        if isinstance(message, dict):
            self.factory.uplink.received(self, message)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.uplink.closed(self, code, reason)

    def send_bytes(self, payload: bytes) -> None:
        # A close may be under way (the hub shutting down): sending would
        # raise and stop the batch loop; the batch stays in flight and is
        # sent again after the reconnect.
        if self.state == WebSocketClientProtocol.STATE_OPEN:
            self.sendMessage(payload)

    def close(self, code: int = 1000, reason: str = "") -> None:
        if self.state == WebSocketClientProtocol.STATE_OPEN:
            self.sendClose(code, reason[:100] or None)


class IngestClientFactory(WebSocketClientFactory):
    """Connections to one hub, all feeding one Uplink."""

    protocol = IngestClientProtocol

    def __init__(self, hub: str, token: str, uplink: Uplink) -> None:
        super().__init__(hub, headers={"Authorization": f"Bearer {token}"}, useragent="dashd-agent")
        self.uplink = uplink
        self.setProtocolOptions(
            autoPingInterval=20,
            autoPingTimeout=10,
            openHandshakeTimeout=10,
            closeHandshakeTimeout=3,
            maxMessagePayloadSize=1024 * KIB,
        )


def hub_endpoint(reactor: Any, url: str, ca_file: str | None = None):
    """A client endpoint for ws://HOST:PORT/... or wss://HOST:PORT/... (TLS
    verified against the system trust store, or only `ca_file` if given)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(f"--hub must be a ws:// or wss:// URL, not {url!r}")
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    endpoint = HostnameEndpoint(reactor, parts.hostname, port, timeout=10)
    if not secure:
        if ca_file:
            raise ValueError("--ca-file needs a wss:// hub URL")
        return endpoint
    from twisted.internet.ssl import Certificate, optionsForClientTLS

    trust_root = None
    if ca_file:
        with open(ca_file, "rb") as f:
            trust_root = Certificate.loadPEM(f.read())
    options = (
        optionsForClientTLS(parts.hostname, trustRoot=trust_root)
        if trust_root is not None
        else optionsForClientTLS(parts.hostname)
    )
    return wrapClientTLS(options, endpoint)
