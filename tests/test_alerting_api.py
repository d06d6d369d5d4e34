"""Alert delivery in the running daemon (real service tree, real sockets,
SQLite): a rule's alert travels routing, grouping and the outbox to a real
webhook receiver; /api/alerting/ lets admins manage channels (secrets
write-only) and press "send test", operators create and expire silences
(audited; a silenced alert is shown marked silenced but not delivered),
viewers read silences and the timeline; bad input is a 4xx with a JSON
body; a bad channel section stops the daemon at start with one line."""

from __future__ import annotations

import json
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from alert_receivers import HttpReceiver
from conftest import start_daemon
from dashd.collect.collector import Sample
from dashd.settings import ConfigError
from dashd.stream.bus import NOTIFICATIONS_TOPIC
from dashd.tap import build_daemon
from httpclient import http

WAIT_LIMIT = 30.0


async def eventually(check, what: str):
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        result = await check() if callable(check) else check
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await deferLater(reactor, 0.05, lambda: None)


def write_ini(tmp_path, receiver: HttpReceiver, extra: str = "") -> str:
    path = tmp_path / "dashd.ini"
    path.write_text(f"""
[dashd]
alert_allow_networks = 127.0.0.0/8
alert_dashboard_url = https://dash.example.com

[rules]
hot = cpu_usage > 1000 for 0 level=critical label.team=db

[channel:ops-hook]
kind = webhook
url = {receiver.url}
format = generic
header.Authorization = Bearer ini-secret

[route:all]
channels = *
group_by = alertname, host
group_wait = 0s
group_interval = 1s
{extra}
""")
    return str(path)


@pytest.fixture
def receiver():
    hook = HttpReceiver().start()
    yield hook
    if hook._listening is not None:
        hook._listening.stopListening()


@pytest_twisted.async_yield_fixture
async def alert_daemon(make_settings, tmp_path, receiver):
    running = await start_daemon(make_settings(config=write_ini(tmp_path, receiver)))
    await running.service.alerting.loaded
    yield running
    await running.stop()


def auth(daemon, role: str) -> dict:
    return {"Authorization": f"Bearer {daemon.token(role, subject=f'{role}-user')}"}


def fire(daemon, host: str, value: float = 2000.0) -> None:
    daemon.core.rules.evaluate(Sample(host, daemon.core.wall_clock_ms(), {"cpu_usage": value}))


@pytest_twisted.ensureDeferred
async def test_a_rules_alert_reaches_the_webhook_and_the_delivery_log(alert_daemon, receiver, logged_failures):
    fire(alert_daemon, "db1")
    await eventually(lambda: _has(receiver, 1), "the webhook to receive the alert")
    body = json.loads(receiver.requests[0]["body"])
    assert receiver.requests[0]["headers"]["authorization"] == "Bearer ini-secret"
    assert body["status"] == "firing" and body["receiver"] == "ops-hook"
    assert body["alerts"][0]["labels"] == {"alertname": "hot", "host": "db1", "severity": "critical", "team": "db"}
    assert body["alerts"][0]["dashboardURL"].startswith("https://dash.example.com/?from=")
    assert body["alerts"][0]["dashboardURL"].endswith("&host=db1")
    fire(alert_daemon, "db1", value=5.0)
    await eventually(lambda: _has(receiver, 2), "the resolved message")
    assert json.loads(receiver.requests[1]["body"])["status"] == "resolved"
    url = alert_daemon.url("/api/alerting/deliveries", "http")
    log = (await http("GET", url, auth(alert_daemon, "operator"))).json()
    assert [d["status"] for d in log["deliveries"]] == ["delivered", "delivered"]
    assert log["deliveries"][0]["log"][0]["detail"] == "HTTP 200: ok"
    timeline = (
        await http("GET", alert_daemon.url("/api/alerting/timeline", "http"), auth(alert_daemon, "viewer"))
    ).json()
    assert [(e["state"], e["labels"]["host"]) for e in timeline["events"]] == [("resolved", "db1"), ("firing", "db1")]
    exposition = (await http("GET", alert_daemon.url("/metrics", "http"))).body.decode()
    assert 'dashd_alert_delivery_attempts_total{channel="ops-hook",outcome="delivered"} 2.0' in exposition
    assert logged_failures == []


async def _has(receiver: HttpReceiver, count: int) -> bool:
    return len(receiver.requests) >= count


@pytest_twisted.ensureDeferred
async def test_admins_manage_channels_whose_secrets_are_never_returned(alert_daemon, receiver):
    url = alert_daemon.url("/api/alerting/channels/team-slack", "http")
    admin = auth(alert_daemon, "admin")
    created = await http(
        "PUT",
        url,
        admin,
        json_body={
            "kind": "webhook",
            "url": receiver.url,
            "format": "slack",
            "headers": {"Authorization": "Bearer api-secret"},
        },
    )
    assert created.status == 200, created.body
    assert b"api-secret" not in created.body and created.json()["channel"]["headers"] == ["Authorization"]
    # The URL's path may be the webhook's token (Slack): shown as scheme and host only.
    assert created.json()["channel"]["url"] == f"http://127.0.0.1:{receiver.port}/…" and b"/hook" not in created.body
    listed = await http("GET", alert_daemon.url("/api/alerting/channels", "http"), admin)
    assert listed.status == 200 and b"secret" not in listed.body.replace(b'"secrets"', b"")
    assert b"/hook" not in listed.body
    assert [c["name"] for c in listed.json()["channels"]] == ["ops-hook", "team-slack"]
    assert listed.json()["channels"][0]["source"] == "config"
    # An update that leaves the secret out keeps it (the browser never has it).
    updated = await http(
        "PUT",
        url,
        admin,
        json_body={"kind": "webhook", "format": "slack", "headers": {"Authorization": None}, "timeout": 3},
    )
    assert updated.status == 200, updated.body
    tested = await http("POST", url + "/test", admin)
    assert tested.status == 200 and tested.json()["result"] == {
        "ok": True,
        "detail": "HTTP 200: ok",
        "status": 200,
        "permanent": False,
    }
    [request] = receiver.requests
    assert request["headers"]["authorization"] == "Bearer api-secret"
    assert json.loads(request["body"])["text"].startswith("[TEST] [FIRING:1]")
    assert (await http("DELETE", url, admin)).status == 204
    assert (await http("DELETE", url, admin)).status == 404
    rows = await alert_daemon.core.store.fetchall("SELECT action, detail FROM audit_log ORDER BY id")
    actions = [a for a, _ in rows]
    assert actions == ["alert_channel_set", "alert_channel_set", "alert_channel_test", "alert_channel_delete"]
    assert all("secret" not in detail for _, detail in rows)


@pytest.mark.parametrize(
    "method, path, role, status",
    [
        ("GET", "channels", "operator", 403),
        ("PUT", "channels/x", "operator", 403),
        ("POST", "channels/ops-hook/test", "operator", 403),
        ("GET", "deliveries", "viewer", 403),
        ("POST", "silences", "viewer", 403),
        ("GET", "silences", "agent", 403),
        ("GET", "timeline", "agent", 403),
        ("GET", "channels", None, 401),
        ("GET", "nothing-here", "admin", 404),
        ("DELETE", "silences/s-none", "operator", 404),
        ("POST", "channels/nope/test", "admin", 404),
        ("GET", "deliveries?status=lost", "operator", 400),
        ("GET", "timeline?limit=0", "viewer", 400),
    ],
)
@pytest_twisted.ensureDeferred
async def test_roles_and_bad_requests_get_a_json_error(alert_daemon, method, path, role, status):
    headers = auth(alert_daemon, role) if role else {}
    body = {} if method in ("PUT", "POST") else None
    response = await http(method, alert_daemon.url(f"/api/alerting/{path}", "http"), headers, json_body=body)
    assert response.status == status, response.body
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize(
    "body, complaint",
    [
        ({"kind": "webhook", "url": "gopher://x"}, "must be an http:// or https:// URL"),
        ({"kind": "webhook", "url": "https://x", "ca_file": "/etc/passwd"}, "ca_file can only be set in the INI file"),
        ({"kind": "email", "host": "smtp.example.com", "from": "a@example.com", "to": []}, "to must list"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_an_invalid_channel_from_the_api_is_a_400_saying_why(alert_daemon, body, complaint):
    response = await http(
        "PUT", alert_daemon.url("/api/alerting/channels/bad", "http"), auth(alert_daemon, "admin"), json_body=body
    )
    assert response.status == 400 and complaint in response.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_an_ini_channel_cannot_be_changed_from_the_api(alert_daemon):
    response = await http(
        "PUT",
        alert_daemon.url("/api/alerting/channels/ops-hook", "http"),
        auth(alert_daemon, "admin"),
        json_body={"kind": "webhook", "url": "https://x.example"},
    )
    assert response.status == 400 and "configured in the INI file" in response.json()["error"]["message"]


@pytest_twisted.ensureDeferred
async def test_a_silenced_alert_is_shown_marked_silenced_but_not_delivered(alert_daemon, receiver):
    notifications = []
    alert_daemon.core.bus.subscribe(NOTIFICATIONS_TOPIC, lambda topic, m: notifications.append(m["data"]))
    created = await http(
        "POST",
        alert_daemon.url("/api/alerting/silences", "http"),
        auth(alert_daemon, "operator"),
        json_body={
            "matchers": [{"name": "host", "op": "=~", "value": "maint-.*"}],
            "duration_s": 3600,
            "comment": "disk swap on maint hosts",
        },
    )
    assert created.status == 201, created.body
    silence = created.json()["silence"]
    assert silence["state"] == "active" and silence["created_by"] == "operator-user"
    fire(alert_daemon, "maint-1")
    fire(alert_daemon, "db2")
    await eventually(lambda: _has(receiver, 1), "the unsilenced alert")
    await deferLater(reactor, 1.5, lambda: None)  # a silenced one would have gone out by now (group_interval 1s)
    assert [json.loads(r["body"])["alerts"][0]["labels"]["host"] for r in receiver.requests] == ["db2"]
    assert [(n["title"].rsplit(" ", 1)[-1], n["silenced"]) for n in notifications] == [
        ("maint-1", True),
        ("db2", False),
    ]
    timeline = (
        await http("GET", alert_daemon.url("/api/alerting/timeline", "http"), auth(alert_daemon, "viewer"))
    ).json()
    assert {e["labels"]["host"]: e["silenced_by"] for e in timeline["events"]} == {
        "maint-1": silence["id"],
        "db2": None,
    }
    listed = (
        await http("GET", alert_daemon.url("/api/alerting/silences", "http"), auth(alert_daemon, "viewer"))
    ).json()
    assert [s["id"] for s in listed["silences"]] == [silence["id"]]
    expired = await http(
        "DELETE", alert_daemon.url(f"/api/alerting/silences/{silence['id']}", "http"), auth(alert_daemon, "admin")
    )
    assert expired.status == 204
    listed = (
        await http("GET", alert_daemon.url("/api/alerting/silences", "http"), auth(alert_daemon, "viewer"))
    ).json()
    assert listed["silences"][0]["state"] == "expired" and listed["silences"][0]["expired_by"] == "admin-user"
    rows = await alert_daemon.core.store.fetchall("SELECT actor, action FROM audit_log ORDER BY id")
    assert rows == [("operator-user", "silence_create"), ("admin-user", "silence_expire")]


@pytest.mark.parametrize(
    "body, complaint",
    [
        ({"matchers": [], "duration_s": 60, "comment": "x"}, "'matchers' must be a list"),
        ({"matchers": [{"name": "host", "value": "a"}], "duration_s": 60}, "'comment' is required"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_bad_silence_is_a_400_saying_why(alert_daemon, body, complaint):
    response = await http(
        "POST", alert_daemon.url("/api/alerting/silences", "http"), auth(alert_daemon, "operator"), json_body=body
    )
    assert response.status == 400 and complaint in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "section, complaint",
    [
        ("[channel:bad]\nkind = webhook\nurl = ftp://x\n", "invalid configuration: [channel:bad]: url must be an http"),
        ("[channel:bad]\nkind = pigeon\n", "invalid configuration: [channel:bad]: kind must be one of"),
        ("[route:r2]\nchannels = nowhere\n", "invalid configuration: [route:r2]: no channel named 'nowhere'"),
        ("[route:r2]\nchannels = *\ngroup_wait = soon\n", "invalid configuration: [route:r2]: group_wait must be"),
    ],
)
def test_a_bad_channel_or_route_section_stops_the_start_with_one_line(make_settings, tmp_path, section, complaint):
    receiver = HttpReceiver()
    settings = make_settings(config=write_ini(tmp_path, receiver, section))
    with pytest.raises(ConfigError) as caught:
        build_daemon(settings, reactor)
    assert str(caught.value).startswith(complaint) and "\n" not in str(caught.value)
