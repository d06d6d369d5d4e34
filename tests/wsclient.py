"""A small Autobahn (Twisted) WebSocket client for tests: messages land in a
queue; helpers wait for a type or a correlation_id with a timeout."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.endpoints import TCP4ClientEndpoint

TIMEOUT = 10.0


class _Protocol(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.client._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.client._message(payload, isBinary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.client._closed(wasClean, code, reason)


class TestClient:
    __test__ = False

    def __init__(self) -> None:
        self.protocol: _Protocol | None = None
        self.queue: DeferredQueue = DeferredQueue()
        self.received: list[dict] = []  # everything, in order
        self.raw_sizes: list[int] = []
        self.raw: list[bytes] = []  # every payload as received (assertions on exact bytes)
        self.close_info: tuple[bool, int | None, str | None] | None = None
        self._open: Deferred = Deferred()
        self._close_waiters: list[Deferred] = []

    def _opened(self, protocol: _Protocol) -> None:
        self.protocol = protocol
        self._open.callback(self)

    def _message(self, payload: bytes, binary: bool) -> None:
        self.raw_sizes.append(len(payload))
        self.raw.append(payload)
        message = json.loads(payload)
        self.received.append(message)
        self.queue.put(message)

    def _closed(self, clean: bool, code: int | None, reason: str | None) -> None:
        self.close_info = (clean, code, reason)
        if not self._open.called:
            self._open.errback(ConnectionError(f"handshake failed: {code} {reason}"))
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback((code, reason))

    def send(self, message: Any) -> None:
        self.protocol.sendMessage(json.dumps(message).encode())

    def send_raw(self, payload: bytes, binary: bool = False) -> None:
        self.protocol.sendMessage(payload, isBinary=binary)

    async def recv(self, timeout: float = TIMEOUT) -> dict:
        d = self.queue.get()
        d.addTimeout(timeout, reactor)
        return await d

    async def recv_type(self, type_: str, timeout: float = TIMEOUT) -> dict:
        """The next message of this type; `timeout` bounds the whole wait."""
        deadline = reactor.seconds() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - reactor.seconds()))
            if message["type"] == type_:
                return message

    async def reply_to(self, correlation_id: Any, timeout: float = TIMEOUT) -> dict:
        deadline = reactor.seconds() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - reactor.seconds()))
            if message.get("correlation_id") == correlation_id and message["type"] not in ("resume_gap",):
                return message

    async def request(self, type_: str, data: dict | None = None, timeout: float = TIMEOUT) -> dict:
        correlation_id = f"c{id(data)}-{len(self.received)}-{type_}"
        self.send({"type": type_, "data": data or {}, "correlation_id": correlation_id})
        return await self.reply_to(correlation_id, timeout)

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str | None]:
        """(code, reason) once the connection has closed."""
        if self.close_info is not None:
            return self.close_info[1], self.close_info[2]
        waiter: Deferred = Deferred()
        self._close_waiters.append(waiter)
        waiter.addTimeout(timeout, reactor)
        return await waiter

    def close(self, code: int = 1000) -> None:
        if self.protocol is not None and self.close_info is None:
            self.protocol.sendClose(code)

    def abort(self) -> None:
        if self.protocol is not None:
            self.protocol.transport.abortConnection()


async def connect(
    url: str, token: str | None = None, headers: dict | None = None, compression: bool = False, timeout: float = TIMEOUT
) -> TestClient:
    parts = urlsplit(url)
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    factory = WebSocketClientFactory(url, headers=all_headers)
    factory.protocol = _Protocol
    options: dict = {"autoPingInterval": 0, "maxMessagePayloadSize": 0, "maxFramePayloadSize": 0}
    if compression:
        options["perMessageCompressionOffers"] = [PerMessageDeflateOffer(accept_max_window_bits=True)]
        options["perMessageCompressionAccept"] = lambda response: (
            PerMessageDeflateResponseAccept(response) if isinstance(response, PerMessageDeflateResponse) else None
        )
    factory.setProtocolOptions(**options)
    client = TestClient()
    factory.client = client
    endpoint = TCP4ClientEndpoint(reactor, parts.hostname, parts.port, timeout=timeout)
    await endpoint.connect(factory)
    opened = client._open
    opened.addTimeout(timeout, reactor)
    return await opened
