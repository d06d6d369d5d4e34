"""Outbound connections for alert delivery, guarded against SSRF.

A target's host name is resolved once (in a thread: getaddrinfo blocks);
every address is checked — loopback, link-local, private, shared, reserved
and cloud-metadata addresses are refused unless an admin allow-listed their
network (`alert_allow_networks`) — and the connection goes to the checked
address, so a second DNS answer cannot point it elsewhere (rebinding). TLS
is verified against the host name (platform trust store, or a channel's
`ca_file`)."""

from __future__ import annotations

import ipaddress
import socket
from typing import IO, Any, Iterable

from OpenSSL import SSL
from twisted.internet import defer, error, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IConsumer,
    IOpenSSLClientConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.mail import smtp
from twisted.python.failure import Failure
from twisted.web.client import URI, Agent, ResponseFailed
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

MAX_ANSWER = 64 * 1024
METADATA = (
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(Exception):
    """The target address is not allowed (SSRF protection)."""

    permanent = True


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def refusal(address: str, allowed: tuple[Network, ...]) -> str | None:
    """Why an address may not be a delivery target, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA:
        return "a cloud metadata address"  # whatever is allow-listed: it hands out credentials
    if any(ip.version == net.version and ip in net for net in allowed):
        return None
    for test, name in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_private, "a private address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_unspecified, "an unspecified address"),
        (not ip.is_global, "not a public address"),
    ):
        if test:
            return name
    return None


@implementer(IBodyProducer)
class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: IConsumer) -> defer.Deferred[None]:
        consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass  # IPushProducer's, like pauseProducing: startProducing wrote it all

    def stopProducing(self) -> None:
        pass


class _CappedBody(Protocol):
    """Reads at most MAX_ANSWER bytes of a response (a receiver could send
    gigabytes); ends on any close."""

    def __init__(self, finished: defer.Deferred[bytes]) -> None:
        self.finished = finished
        self.data = bytearray()

    def dataReceived(self, data: bytes) -> None:
        room = MAX_ANSWER - len(self.data)
        if room > 0:
            self.data += data[:room]

    def connectionLost(self, reason: Failure | None = None) -> None:
        if not self.finished.called:
            self.finished.callback(bytes(self.data))


class _CheckedEndpointFactory:
    """Agent endpoint factory: each request connects to an address checked
    by the guard, wrapping TLS for https with the original host name."""

    def __init__(self, guard: NetworkGuard, ca_file: str) -> None:
        self.guard = guard
        self.ca_file = ca_file

    def endpointForURI(self, uri: URI) -> _CheckedEndpoint:
        return _CheckedEndpoint(self.guard, uri.scheme.decode(), uri.host.decode(), uri.port, self.ca_file)


class _CheckedEndpoint:
    def __init__(self, guard: NetworkGuard, scheme: str, host: str, port: int, ca_file: str) -> None:
        self.guard, self.scheme, self.host, self.port, self.ca_file = guard, scheme, host, port, ca_file

    def connect(self, factory: IProtocolFactory) -> defer.Deferred[IProtocol]:
        return defer.Deferred.fromCoroutine(self._connect(factory))

    async def _connect(self, factory: IProtocolFactory) -> IProtocol:
        endpoint = await self.guard.endpoint(self.host, self.port)
        if self.scheme == "https":
            endpoint = wrapClientTLS(self.guard.tls_options(self.host, self.ca_file), endpoint)
        return await endpoint.connect(factory)


class _Sender(smtp.ESMTPSender):
    """twisted.mail reports a lost connection (a refused certificate, a
    server hanging up) through the factory's clientConnectionLost, which an
    endpoint never calls; report it from the protocol instead."""

    def connectionLost(self, reason: Failure | None = None) -> None:
        super().connectionLost(reason)  # type: ignore[no-untyped-call]  # twisted.mail is untyped
        self.factory._processConnectionError(None, reason)


class _SenderFactory(smtp.ESMTPSenderFactory):
    protocol = _Sender


class NetworkGuard:
    """Resolves, checks and connects; `post` for webhooks and Alertmanager,
    `send_mail` for SMTP."""

    # Any: it is IReactorTCP, IReactorThreads and IReactorTime at once, which
    # zope interfaces cannot say as one type.
    def __init__(self, reactor: Any, allowed: tuple[Network, ...] = ()) -> None:
        self.reactor = reactor
        self.allowed = allowed

    async def resolve(self, host: str, port: int) -> str:
        literal = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(literal))]
        except ValueError:
            try:
                infos = await threads.deferToThreadPool(
                    self.reactor, self.reactor.getThreadPool(), socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM
                )
            except socket.gaierror as e:
                raise error.DNSLookupError(f"cannot resolve {host} ({e.strerror})") from None
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        reasons = []
        for address in addresses:
            reason = refusal(address, self.allowed)
            if reason is None:
                return address
            reasons.append(f"{address} is {reason}")
        raise TargetRefused(
            f"refused target {host}: {'; '.join(reasons)} (an admin can allow its network with alert_allow_networks)"
        )

    async def endpoint(self, host: str, port: int, timeout: float = 30) -> IStreamClientEndpoint:
        address = await self.resolve(host, port)
        kind = TCP6ClientEndpoint if ":" in address else TCP4ClientEndpoint
        return kind(self.reactor, address, port, timeout=timeout)

    def tls_options(self, host: str, ca_file: str) -> IOpenSSLClientConnectionCreator:
        if ca_file:
            with open(ca_file, "rb") as f:
                roots = [Certificate.loadPEM(block) for block in _pem_blocks(f.read())]
            return optionsForClientTLS(host, trustRoot=trustRootFromCertificates(roots))  # type: ignore[no-untyped-call]  # Twisted's ssl is untyped
        return optionsForClientTLS(host)

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout: float, ca_file: str = ""
    ) -> tuple[int, bytes]:
        agent = Agent.usingEndpointFactory(self.reactor, _CheckedEndpointFactory(self, ca_file))  # type: ignore[no-untyped-call]  # twisted.web is
        request = agent.request(
            b"POST",
            url.encode("ascii"),
            Headers({k.encode("latin-1"): [v.encode("latin-1")] for k, v in headers.items()}),
            _Body(body),
        )
        request.addTimeout(timeout, self.reactor)
        response = await request
        finished: defer.Deferred[bytes] = defer.Deferred()
        response.deliverBody(_CappedBody(finished))
        finished.addTimeout(timeout, self.reactor)
        return response.code, await finished

    async def send_mail(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        password: str,
        sender: str,
        recipients: tuple[str, ...],
        message: IO[bytes],
        timeout: float,
        ca_file: str = "",
    ) -> tuple[int, int, str]:
        tls = self.tls_options(host, ca_file) if security != "none" else None
        # Fired by twisted.mail with (accepted count, [(address, code, text)]).
        done: defer.Deferred[tuple[int, list[tuple[str, int, bytes]]]] = defer.Deferred()
        factory = _SenderFactory(  # type: ignore[no-untyped-call]  # twisted.mail is untyped
            username.encode() if username else None,
            password.encode() if password else None,
            sender,
            list(recipients),
            message,
            done,
            retries=0,
            timeout=timeout,
            contextFactory=tls,
            requireAuthentication=bool(username),
            requireTransportSecurity=security != "none",
        )
        endpoint = await self.endpoint(host, port, timeout)
        if security == "tls":
            assert tls is not None  # made for every security but "none"
            endpoint = wrapClientTLS(tls, endpoint)
        connecting = endpoint.connect(factory)
        connecting.addTimeout(timeout, self.reactor)
        await connecting
        done.addTimeout(timeout, self.reactor)
        accepted, answers = await done
        last = answers[-1] if answers else None
        answer = f"{last[1]} {last[2].decode('utf-8', 'replace')}" if last else ""
        return accepted, len(recipients), answer


def _pem_blocks(data: bytes) -> list[bytes]:
    import re

    return re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.S)


def describe_failure(exc: BaseException, timeout: float) -> str:
    """One line for the delivery log; never the request (it may hold a token)."""
    if isinstance(exc, TargetRefused):
        return str(exc)
    if isinstance(exc, (defer.TimeoutError, defer.CancelledError, error.TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, error.ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, error.DNSLookupError):
        return f"DNS lookup failed: {exc}"
    if isinstance(exc, ResponseFailed) and any(
        r.check(defer.CancelledError, defer.TimeoutError, error.TimeoutError) for r in exc.reasons
    ):
        return f"timed out after {timeout:g}s"  # our timeout cancelled the request mid-way
    if isinstance(exc, ResponseFailed):
        reasons = "; ".join(_short(r.value) for r in exc.reasons)
        return f"malformed or cut-off HTTP answer ({reasons})"
    if isinstance(exc, SSL.Error):
        return f"TLS failed: {_short(exc)}"
    if isinstance(exc, smtp.SMTPClientError):
        # Only the server's answer: str(exc) carries the session transcript,
        # AUTH lines (the credentials, base64) included.
        resp = exc.resp.decode("utf-8", "replace") if isinstance(exc.resp, bytes) else str(exc.resp or "")
        return f"SMTP: {exc.code} {' '.join(resp.split())}"[:240]
    if isinstance(exc, error.ConnectError):
        return f"cannot connect: {_short(exc)}"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {_short(exc)}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, SSL.Error) and exc.args and isinstance(exc.args[0], list):
        text = ", ".join(str(part[2]) for part in exc.args[0] if len(part) > 2) or text
    return text[:240]
