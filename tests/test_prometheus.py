"""Issue 18 item 7: a real Prometheus scrapes a running dashd (with a
metrics_token) and answers PromQL over dashd's series; the shipped alert
rules and Grafana dashboard are checked against promtool and against the
metric names dashd really exposes."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
import pytest_twisted

from conftest import start_daemon
from fakes import sleep
from httpclient import http
from wsclient import connect

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "etc" / "prometheus" / "dashd-alerts.yml"
RULE_TESTS = ROOT / "tests" / "prometheus" / "dashd-alerts.test.yml"
DASHBOARD = ROOT / "etc" / "grafana" / "dashd-dashboard.json"
TOKEN = "scrape-me-0123456789"
PATIENCE = 60.0  # bound on waiting for Prometheus to start and scrape; not a speed assertion


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install prometheus (.ci/run does it)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_alert_rules_pass_promtool_check_and_their_unit_tests():
    check = subprocess.run([tool("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 4 rules found" in check.stdout
    tests = subprocess.run(
        [tool("promtool"), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=RULE_TESTS.parent,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    names = set(re.findall(r"alert: (\w+)", RULES.read_text()))
    assert {"DashdDown", "DashdStoreNotReady", "DashdSlowConsumersRising"} <= names


def exposed_names(exposition: str) -> set[str]:
    """Every series name a scrape of this exposition can produce."""
    names = {"up"}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", exposition, re.M):
        names.add(family)
        if kind == "counter":
            names |= {f"{family}_total", f"{family}_created"}
        if kind == "histogram":
            names |= {f"{family}_bucket", f"{family}_sum", f"{family}_count", f"{family}_created"}
    return names


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] == "dashd" and dashboard["panels"]
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def referenced_names(text: str) -> set[str]:
    return set(re.findall(r"\b(dashd_[a-z0-9_]+)", text))


@pytest_twisted.ensureDeferred
async def test_dashboard_and_rules_reference_only_metrics_dashd_exposes(make_settings):
    running = await start_daemon(make_settings(metrics_token=TOKEN))
    try:
        scrape = await http("GET", running.url("/metrics", "http"), headers={"Authorization": f"Bearer {TOKEN}"})
        assert scrape.status == 200
        exposed = exposed_names(scrape.body.decode())
    finally:
        await running.stop()
    used = set().union(*(referenced_names(expr) for expr in dashboard_exprs()))
    assert used and used <= exposed, sorted(used - exposed)
    in_rules = referenced_names(RULES.read_text())
    assert {"dashd_store_available", "dashd_slow_consumer_closes_total"} <= in_rules <= exposed, sorted(
        in_rules - exposed
    )


class Prometheus:
    """prometheus on 127.0.0.1:<port>, scraping one dashd every second, with the shipped rules."""

    def __init__(self, tmp_path: Path, target_port: int) -> None:
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {RULES}\n"
            "scrape_configs:\n  - job_name: dashd\n    authorization:\n"
            f"      credentials: {TOKEN}\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        )
        self.log_path = tmp_path / "prometheus.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    async def api(self, path: str, **params: str) -> dict:
        query = f"?{urlencode(params)}" if params else ""
        response = await http("GET", f"http://127.0.0.1:{self.port}/api/v1/{path}{query}")
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def until(self, what: str, probe) -> object:
        waited = 0.0
        while waited < PATIENCE:
            try:
                result = await probe()
            except (ConnectionError, OSError, ValueError):
                result = None  # not listening yet
            except Exception as e:  # twisted's ConnectionRefusedError and friends
                if "refused" not in str(e).lower() and "connection" not in type(e).__name__.lower():
                    raise
                result = None
            if result:
                return result
            if self.process.poll() is not None:
                break
            await sleep(0.5)
            waited += 0.5
        raise AssertionError(f"Prometheus never showed {what}:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest_twisted.ensureDeferred
async def test_a_real_prometheus_scrapes_dashd_and_answers_promql_over_its_series(tmp_path, make_settings):
    """Prometheus (Debian's package) scrapes /metrics with the bearer token;
    its HTTP API then lists dashd_ series, computes
    rate(dashd_messages_sent_total[1m]) for the metrics_update frames a client
    receives, loads the shipped alert rules, and evaluates every dashboard query."""
    running = await start_daemon(make_settings(metrics_token=TOKEN))
    prometheus = Prometheus(tmp_path, running.port)
    client = await connect(running.url(), running.token())
    try:

        async def scraped():
            result = (await prometheus.api("query", query='up{job="dashd"}'))["result"]
            return result and result[0]["value"][1] == "1"

        await prometheus.until("dashd up", scraped)

        async def dashd_series():
            names = await prometheus.api("label/__name__/values")
            ours = [name for name in names if name.startswith("dashd_")]
            return ours if len(ours) >= 10 else None

        names = await prometheus.until("dashd_ series", dashd_series)
        assert {"dashd_messages_sent_total", "dashd_connections", "dashd_store_available"} <= set(names)

        async def rate_of_updates():
            result = (await prometheus.api("query", query="rate(dashd_messages_sent_total[1m])"))["result"]
            by_type = {r["metric"]["type"]: float(r["value"][1]) for r in result}
            return by_type if by_type.get("metrics_update", 0) > 0 else None

        rates = await prometheus.until("a rate of metrics_update frames", rate_of_updates)
        assert rates["metrics_update"] > 0

        groups = (await prometheus.api("rules"))["groups"]
        loaded = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
        assert {"DashdDown", "DashdStoreNotReady", "DashdSlowConsumersRising"} <= set(loaded)
        for expr in dashboard_exprs():
            promql = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
            await prometheus.api("query", query=promql)  # status success: it parses and evaluates
    finally:
        client.close()
        prometheus.stop()
        await running.stop()
