"""The seams issue 12 introduced: one Bearer parser, one error-frame shape,
one correlation_id rule on every endpoint, one ticking rule for the
collector, Twisted's endpoint service reporting its port, and shutdown
hooks registered instead of appended to a shared object."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock

from dashd.auth.handshake import MissingBearer, TokenVerifier, bearer_token, verify_bearer
from dashd.auth.revocations import RevocationList
from dashd.auth.tokens import AuthError, EndpointForbidden, TokenIssuer
from dashd.collect.collector import TICK_SLACK, CollectorService, Sample
from dashd.errors import ProtocolError, correlation_id_of, error_frame
from dashd.ops.shutdown import ShutdownHooks
from dashd.stream.bus import InMemoryBus
from dashd.tap import EndpointListener
from wsclient import connect


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("BEARER abc", "abc"),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("abc", None),
    ],
)
def test_bearer_token_is_parsed_one_way(header, token):
    assert bearer_token(header) == token


def test_verify_bearer_applies_the_endpoint_rule_and_revocations():
    issuer = TokenIssuer(b"k" * 64)
    revocations = RevocationList()
    verifier = TokenVerifier(issuer, revocations)
    with pytest.raises(MissingBearer):
        verify_bearer(verifier, "Token x")
    agent = issuer.mint("web-1", "agent", 60)[0]
    with pytest.raises(EndpointForbidden):
        verify_bearer(verifier, f"Bearer {agent}")  # agents only on /ingest
    assert verify_bearer(verifier, f"Bearer {agent}", "ingest").subject == "web-1"
    viewer = issuer.mint("alice", "viewer", 60)[0]
    assert verify_bearer(verifier, f"Bearer {viewer}").role == "viewer"
    revocations.disable_user("alice")
    with pytest.raises(AuthError, match="disabled"):
        verify_bearer(verifier, f"Bearer {viewer}")


def test_error_frame_has_one_shape():
    error = ProtocolError("rate_limited", "slow down", {"retry_after": 1.0})
    assert error_frame(error, "c1") == {
        "type": "error",
        "correlation_id": "c1",
        "data": {"code": "rate_limited", "message": "slow down", "details": {"retry_after": 1.0}},
    }


@pytest.mark.parametrize("value", ["abc", 7, 0, "x" * 128, None])
def test_correlation_ids_the_rule_accepts(value):
    assert correlation_id_of({"correlation_id": value}) == value


@pytest.mark.parametrize("value", [True, False, 1.5, "x" * 129, 10**130, ["a"], {"a": 1}])
def test_correlation_ids_the_rule_refuses(value):
    with pytest.raises(ProtocolError) as refused:
        correlation_id_of({"correlation_id": value})
    assert refused.value.code == "bad_message"


@pytest_twisted.ensureDeferred
async def test_dashboard_and_ingest_apply_the_same_correlation_id_rule(daemon):
    """An integer id is echoed and a boolean refused with bad_message on
    /dashboard and on /ingest alike (they used to disagree)."""
    viewer = await connect(daemon.url("/dashboard"), token=daemon.token("viewer"))
    agent = await connect(daemon.url("/ingest"), token=daemon.token("agent", subject="agent-c"))
    try:
        for client in (viewer, agent):
            assert (await client.recv())["type"] == "connection_ack"
            client.send({"type": "ping", "correlation_id": 42, "data": {}})
            assert (await client.reply_to(42))["type"] == "pong"
            client.send({"type": "ping", "correlation_id": True, "data": {}})
            refused = await client.recv_type("error")
            assert refused["correlation_id"] is None and refused["data"]["code"] == "bad_message"
            assert "correlation_id" in refused["data"]["message"]
    finally:
        viewer.close()
        agent.close()


class StillSampler:
    def prime(self) -> None:
        pass

    def sample(self) -> Sample:
        return Sample("h", 0, {"cpu_usage": 1.0})


def test_the_collector_is_ticking_within_two_intervals_and_the_slack():
    clock = Clock()
    durations: list[float] = []
    collector = CollectorService(StillSampler(), InMemoryBus(), clock, 1.0, on_sample_duration=durations.append)
    assert not collector.is_ticking(clock.seconds())  # not started
    clock.advance(100)
    collector.startService()
    assert collector.started_at == 100 and collector.is_ticking(100 + 2 + TICK_SLACK)
    assert not collector.is_ticking(100 + 2 + TICK_SLACK + 0.01)  # started, never sampled
    clock.advance(1)
    assert collector.last_tick == 101 and len(durations) == 1  # the observer saw the tick
    collector.stopService()
    assert collector.is_ticking(101 + 2 + TICK_SLACK) and not collector.is_ticking(101 + 2 + TICK_SLACK + 0.01)


def test_shutdown_hooks_run_in_order_and_one_failure_does_not_stop_the_rest():
    from twisted.logger import capturedLogs

    hooks = ShutdownHooks()
    ran: list[str] = []
    hooks.add(lambda: ran.append("first"))
    hooks.add(lambda: 1 / 0)
    hooks.add(lambda: ran.append("third"))
    with capturedLogs() as events:
        hooks.run()
    assert [e["log_failure"].type for e in events if "log_failure" in e] == [ZeroDivisionError]
    assert ran == ["first", "third"]


@pytest_twisted.ensureDeferred
async def test_endpoint_listener_reports_its_port_and_a_port_in_use_is_one_line():
    factory = Factory.forProtocol(Protocol)
    first = EndpointListener(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1"), factory, "tcp:0")
    first.startService()
    try:
        port = await first.ready
        assert first.port is port and port.getHost().port > 0
        taken = port.getHost().port
        second = EndpointListener(TCP4ServerEndpoint(reactor, taken, interface="127.0.0.1"), factory, f"tcp:{taken}")
        with pytest.raises(SystemExit, match=f"cannot listen on tcp:{taken}"):
            second.privilegedStartService()
    finally:
        await first.stopService()
    assert first.port is None
