"""Delivery to a real Prometheus Alertmanager (Debian's
prometheus-alertmanager, started on a loopback port with a config written
here): the alert dashd posts is listed by Alertmanager's own API while it
fires, with its labels and annotations; after dashd posts it resolved
(endsAt), Alertmanager no longer lists it as active and notifies its own
receiver that it resolved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from alert_receivers import HttpReceiver, free_port
from dashd.alerting.channels import HttpTransport, parse_channel
from dashd.alerting.model import FIRING, RESOLVED, AlertEvent, alert_labels, build_notice
from dashd.alerting.netguard import NetworkGuard, parse_networks
from httpclient import http

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None and os.environ.get("DASHD_REQUIRE_ALERTMANAGER") != "1",
    reason="prometheus-alertmanager is not installed (.ci/run installs it)",
)
WAIT_LIMIT = 60.0  # seconds to wait for Alertmanager to be ready / to notify (not a timing assertion)


async def eventually(check, what: str):
    deadline = time.monotonic() + WAIT_LIMIT
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await deferLater(reactor, 0.2, lambda: None)


@pytest.fixture
def alertmanager(tmp_path):
    if BINARY is None:
        pytest.fail(
            "DASHD_REQUIRE_ALERTMANAGER=1 but prometheus-alertmanager is not installed (apt-get install "
            "prometheus-alertmanager)"
        )
    hook = HttpReceiver().start()
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook.url}
        send_resolved: true
""")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "alertmanager.log", "wb"),
    )
    yield {"url": f"http://127.0.0.1:{port}", "hook": hook}
    process.terminate()
    process.wait(10)
    if hook._listening is not None:  # the test failed before stopping it
        hook._listening.stopListening()


def notice(event: AlertEvent):
    return build_notice(
        "am",
        "default/am/alertname=dashd_am_test",
        {"alertname": "dashd_am_test"},
        [event],
        "https://dash.example.com",
        f"k-{event.state}",
        50,
    )


@pytest_twisted.ensureDeferred
async def test_alertmanager_lists_the_alert_while_it_fires_and_as_resolved_after(alertmanager):
    base = alertmanager["url"]

    async def ready():
        try:
            return (await http("GET", f"{base}/-/ready")).status == 200
        except Exception:
            return False

    await eventually(ready, "Alertmanager to start")

    channel = parse_channel("am", {"kind": "alertmanager", "url": base, "resend_interval": "60s"})
    transport = HttpTransport(channel, NetworkGuard(reactor, parse_networks(["127.0.0.0/8"])))
    started = int(time.time() * 1000) - 5000
    labels = alert_labels("dashd_am_test", "web1", "critical", [("team", "db")])
    firing = AlertEvent("dashd_am_test", "web1", FIRING, "critical", labels, "cpu high on web1", "cpu is 97%", started)
    result = await transport.send(notice(firing).body)
    assert result.ok and result.status == 200, result.detail

    async def listed():
        alerts = (await http("GET", f"{base}/api/v2/alerts")).json()
        return [a for a in alerts if a["labels"].get("alertname") == "dashd_am_test"]

    [alert] = await eventually(listed, "the alert to be listed")
    assert alert["labels"] == {"alertname": "dashd_am_test", "host": "web1", "severity": "critical", "team": "db"}
    assert alert["annotations"] == {"summary": "cpu high on web1", "description": "cpu is 97%"}
    assert alert["status"]["state"] == "active"
    assert alert["generatorURL"].startswith("https://dash.example.com/?from=")

    resolved = AlertEvent(
        "dashd_am_test",
        "web1",
        RESOLVED,
        "critical",
        labels,
        "back to normal",
        "cpu is 12%",
        started,
        int(time.time() * 1000) - 1000,
    )
    result = await transport.send(notice(resolved).body)
    assert result.ok, result.detail

    async def gone():
        alerts = (await http("GET", f"{base}/api/v2/alerts?active=true")).json()
        return not [a for a in alerts if a["labels"].get("alertname") == "dashd_am_test"]

    assert await eventually(gone, "the alert to stop being active")

    async def told_resolved():
        statuses = [json.loads(r["body"])["status"] for r in alertmanager["hook"].requests]
        return "resolved" in statuses and statuses

    statuses = await eventually(told_resolved, "Alertmanager to notify the resolve")
    assert statuses[0] == "firing" and statuses[-1] == "resolved"
    await alertmanager["hook"].stop()
