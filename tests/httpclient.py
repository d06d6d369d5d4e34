"""Tiny HTTP client for tests on twisted.web's Agent."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import succeed
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer


@implementer(IBodyProducer)
class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.body = data
        self.length = len(data)

    def startProducing(self, consumer):
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self):
        pass

    def stopProducing(self):
        pass


class Response:
    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[-1] if values else None

    def all(self, name: str) -> list[str]:
        return self.headers.getRawHeaders(name) or []

    def json(self) -> Any:
        return json.loads(self.body)


async def http(
    method: str, url: str, headers: dict | None = None, body: bytes | None = None, json_body: Any = None
) -> Response:
    all_headers = {k: [v] for k, v in (headers or {}).items()}
    if json_body is not None:
        body = json.dumps(json_body).encode()
        all_headers.setdefault("Content-Type", ["application/json"])
    producer = _Bytes(body) if body is not None else None
    response = await Agent(reactor).request(method.encode(), url.encode(), Headers(all_headers), producer)
    data = await readBody(response)
    return Response(response.code, response.headers, data)
