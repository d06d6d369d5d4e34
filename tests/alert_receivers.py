"""Real receivers for the alert delivery tests, on 127.0.0.1: an HTTP
receiver that records each request (and answers with a chosen status), a
server that answers with garbage, and a free-port finder."""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.protocol import Factory, Protocol
from twisted.web.resource import Resource
from twisted.web.server import Site


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Recorder(Resource):
    isLeaf = True

    def __init__(self, receiver: HttpReceiver) -> None:
        super().__init__()
        self.receiver = receiver

    def render(self, request):
        self.receiver.requests.append(
            {
                "method": request.method.decode(),
                "path": request.path.decode(),
                "headers": {k.decode().lower(): v[-1].decode() for k, v in request.requestHeaders.getAllRawHeaders()},
                "body": request.content.read(),
            }
        )
        request.setResponseCode(self.receiver.status)
        request.setHeader(b"Content-Type", b"text/plain")
        if self.receiver.location:
            request.setHeader(b"Location", self.receiver.location.encode())
        return self.receiver.answer


class HttpReceiver:
    """Records requests; `status`/`answer` set what it replies. Can be
    stopped and started again on the same port (a receiver that is down)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.requests: list[dict] = []
        self.status = 200
        self.answer = b"ok"
        self.location = ""
        self._listening = None

    def start(self) -> HttpReceiver:
        site = Site(_Recorder(self))
        site.log = lambda request: None
        self._listening = reactor.listenTCP(self.port, site, interface="127.0.0.1")
        return self

    async def stop(self) -> None:
        if self._listening is not None:
            listening, self._listening = self._listening, None
            await listening.stopListening()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


class _Garbage(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(b"this is not HTTP at all\r\n\r\n")
        self.transport.loseConnection()


def start_garbage_server():
    factory = Factory.forProtocol(_Garbage)
    return reactor.listenTCP(0, factory, interface="127.0.0.1")
