"""Per-user notification read state and the active-alerts request (issue 16
items 3 and 4) over real WebSocket connections to the real service tree with
a real SQLite store: what a user read survives a reconnect, is theirs alone,
and every kind of bad input gets a typed error."""

from __future__ import annotations

import pytest
import pytest_twisted

from fakes import authed
from wsclient import connect


async def broadcast(admin, title, level="critical"):
    reply = await admin.request("broadcast", {"level": level, "title": title, "message": "m"})
    assert reply["type"] == "broadcast", reply
    return reply["data"]["id"]


@pytest_twisted.ensureDeferred
async def test_read_marks_are_per_user_and_survive_a_reconnect(daemon):
    admin = await authed(daemon, role="admin")
    first = await broadcast(admin, "one")
    second = await broadcast(admin, "two")
    alice = await authed(daemon, subject="alice")
    state = (await alice.request("notification_state", {"limit": 10}))["data"]
    assert state["unread"] >= 2 and state["read_through"] is None
    flags = {n["id"]: n["read"] for n in state["notifications"]}
    assert flags[first] is False and flags[second] is False
    before = state["unread"]

    marked = (await alice.request("notification_read", {"ids": [first]}))["data"]
    assert marked["ids"] == [first] and marked["unread"] == before - 1
    alice.close()

    again = await authed(daemon, subject="alice")
    state = (await again.request("notification_state", {}))["data"]
    flags = {n["id"]: n["read"] for n in state["notifications"]}
    assert (flags[first], flags[second], state["unread"]) == (True, False, before - 1)

    bob = await authed(daemon, subject="bob")
    bob_state = (await bob.request("notification_state", {}))["data"]
    assert bob_state["unread"] == before, "alice's reads are not bob's"

    everything = (await again.request("notification_read", {"all": True}))["data"]
    assert everything["unread"] == 0 and everything["read_through"]
    third = await broadcast(admin, "three")
    state = (await again.request("notification_state", {}))["data"]
    assert state["unread"] == 1
    assert [n["read"] for n in state["notifications"] if n["id"] == third] == [False]
    for client in (admin, again, bob):
        client.close()


@pytest_twisted.ensureDeferred
async def test_unacknowledged_counts_open_warnings_and_acknowledging_reads_for_the_acknowledger(daemon):
    admin = await authed(daemon, role="admin")
    operator = await authed(daemon, role="operator", subject="olga")
    start = (await operator.request("notification_state", {}))["data"]
    note = await broadcast(admin, "disk")
    await broadcast(admin, "fyi", level="info")
    state = (await operator.request("notification_state", {}))["data"]
    assert state["unacknowledged"] == start["unacknowledged"] + 1, "info needs no acknowledgement"
    assert state["unread"] == start["unread"] + 2
    await operator.request("ack", {"notification_id": note})
    state = (await operator.request("notification_state", {}))["data"]
    assert state["unacknowledged"] == start["unacknowledged"]
    assert state["unread"] == start["unread"] + 1
    assert [n["read"] for n in state["notifications"] if n["id"] == note] == [True]
    admin.close()
    operator.close()


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({}, "bad_message"),
        ({"ids": "n-1"}, "bad_message"),
        ({"ids": []}, "bad_message"),
        ({"ids": [1]}, "bad_message"),
        ({"ids": ["x" * 65]}, "bad_message"),
        ({"ids": [f"n-{i}" for i in range(501)]}, "bad_message"),
        ({"all": "yes"}, "bad_message"),
        ({"ids": ["n-does-not-exist"]}, "not_found"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_notification_read_requests_get_typed_errors(daemon, data, code):
    client = await authed(daemon)
    reply = await client.request("notification_read", data)
    assert reply["type"] == "error" and reply["data"]["code"] == code, reply
    pong = await client.request("ping", {})
    assert pong["type"] == "pong", "the connection stays open"
    client.close()


@pytest.mark.parametrize("data", [{"limit": 0}, {"limit": 501}, {"limit": "5"}])
@pytest_twisted.ensureDeferred
async def test_bad_notification_state_limits_are_bad_messages(daemon, data):
    client = await authed(daemon)
    reply = await client.request("notification_state", data)
    assert reply["type"] == "error" and reply["data"]["code"] == "bad_message", reply
    client.close()


@pytest_twisted.ensureDeferred
async def test_read_state_and_alerts_need_authentication(daemon):
    client = await connect(daemon.url("/dashboard"))
    client.send({"type": "alerts", "data": {}, "correlation_id": "a"})
    error = await client.recv_type("error")
    assert error["data"]["code"] == "unauthorized"
    assert (await client.closed())[0] == 4001


@pytest_twisted.ensureDeferred
async def test_alerts_show_what_fires_since_when_and_who_acknowledged_it(daemon):
    admin = await authed(daemon, role="admin")
    rule = {"name": "always", "metric": "cpu_usage", "op": ">=", "threshold": 0, "for": 0, "level": "critical"}
    assert (await admin.request("rule_set", rule))["type"] == "rule_set"
    firing = None
    while firing is None:
        message = await admin.recv_type("notification")
        if message["data"]["source"] == "rule:always":
            firing = message["data"]
    alerts = (await admin.request("alerts", {}))["data"]["alerts"]
    [alert] = [a for a in alerts if a["rule"] == "always"]
    assert alert["host"] == "testhost" and alert["level"] == "critical" and alert["since"].endswith("Z")
    assert alert["notification_id"] == firing["id"] and alert["acknowledged_by"] is None
    rules = (await admin.request("rule_list", {}))["data"]["rules"]
    [listed] = [r for r in rules if r["name"] == "always"]
    assert (listed["state"], listed["firing"], listed["clear_threshold"]) == ("firing", ["testhost"], 0)

    await admin.request("ack", {"notification_id": firing["id"]})
    [alert] = [a for a in (await admin.request("alerts", {}))["data"]["alerts"] if a["rule"] == "always"]
    assert alert["acknowledged_by"] == "test-admin" and alert["acknowledged_at"]

    await admin.request("rule_delete", {"name": "always"})
    alerts = (await admin.request("alerts", {}))["data"]["alerts"]
    assert [a for a in alerts if a["rule"] == "always"] == []
    admin.close()
