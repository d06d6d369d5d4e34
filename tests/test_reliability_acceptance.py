"""Issue 18, acceptance review: what an operator's fault-injection run found
after the issue's work was merged, each with the test that pins the fix.

1. `resume` while the store is unavailable logged a full traceback per
   request ("resume could not read the store"): an outage is expected, so it
   is now one warning line, and the range the store would have supplied is a
   `resume_gap` (the client refills it with `history` later).
2. With MariaDB cut (connections dropped and new ones failing), `/api/ready`
   took 0.3 to 2.3 s to answer 503 instead of at once: every operation,
   readiness probes included, opened pool.max + 1 fresh connections in turn
   (the retry meant for pooled connections the server dropped), each with a
   whole deadline of its own. Now a connection that never opened is not
   retried, and retries share the operation's one deadline.
3. tests/test_readme.py ran only the ```sh/```python blocks: the INI, JSON,
   YAML and SQL examples, the README's error line and its command table were
   unchecked (section below)."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher

from conftest import start_daemon
from dashd.store.database import Store, StoreUnavailable
from dashd.stream.hub import MemorySequence
from test_hub import make_hub, new_client, publish_samples, result_of
from test_reliability import HUNG, QUERY_TIMEOUT, lines, mysql_via_forwarder, store_events  # noqa: F401 (fixtures)
from wsclient import connect


def capture() -> tuple[list[dict], object]:
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    return events, events.append


def test_resume_when_the_store_is_unavailable_is_a_gap_and_one_warning_line_not_a_traceback():
    """The hub (domain level): a backfill that raises StoreUnavailable gives
    a resume_gap for exactly the range the ring lacks, the live ring part is
    still replayed, and the log has one warning and no failure."""
    clock = Clock()
    hub = make_hub(clock, sequence=MemorySequence(start=1000))
    publish_samples(hub, 3)  # seq 1001..1003: the ring holds only these
    stream, sink = new_client(hub, clock)

    async def unavailable(from_seq: int, to_seq: int) -> list:
        raise StoreUnavailable("no answer from the database within 5s")

    events, observer = capture()
    try:
        result = result_of(
            Deferred.fromCoroutine(hub.resume(stream, 5, unavailable, limit=10_000, correlation_id="r1"))
        )
    finally:
        globalLogPublisher.removeObserver(observer)
    gaps = [m for m in sink.messages if m["type"] == "resume_gap"]
    assert [(g["data"]["from_seq"], g["data"]["to_seq"], g["correlation_id"]) for g in gaps] == [(6, 1000, "r1")]
    assert [m["seq"] for m in sink.messages if m["type"] == "metrics_update"] == [1001, 1002, 1003]
    assert result.replayed == 3
    failures = [e for e in events if e.get("log_failure") is not None]
    assert failures == [], [formatEvent(e) for e in failures]
    warnings = [formatEvent(e) for e in events if "resume: the store cannot answer" in (e.get("log_format") or "")]
    assert len(warnings) == 1 and "6..1000" in warnings[0], warnings


@pytest_twisted.ensureDeferred
async def test_resume_during_a_mariadb_stall_answers_with_a_gap_and_logs_no_traceback(
    mysql_via_forwarder, make_settings, store_events, tmp_path
):  # noqa: F811
    """Over a real socket, with MariaDB behind a stalled forwarder: a client
    resuming from before the ring gets, within the query deadline, a
    resume_gap for what only the store holds and its `resume` reply; the log
    has no traceback."""
    forwarder, via, _direct = mysql_via_forwarder
    state = tmp_path / "state"
    state.mkdir()
    (state / "stream.seq").write_text("1000\n")  # the ring starts at 1001: older seqs are the store's
    running = await start_daemon(make_settings(db=via, db_query_timeout=f"{QUERY_TIMEOUT}s", state_dir=str(state)))
    try:
        client = await connect(running.url(), running.token())
        forwarder.stall()
        reply = await client.request("resume", {"after_seq": 5}, timeout=HUNG)
        assert reply["type"] == "resume", reply
        gaps = [m for m in client.received if m["type"] == "resume_gap"]
        assert gaps and gaps[0]["data"]["from_seq"] == 6 and gaps[0]["data"]["to_seq"] >= 1000, gaps
        failures = [e for e in store_events if e.get("log_failure") is not None]
        assert failures == [], [formatEvent(e) for e in failures]
        client.close()
    finally:
        forwarder.resume()
        await running.stop()


# ----- 1b. a cut database: readiness answers at once


@pytest_twisted.ensureDeferred
async def test_readiness_during_a_cut_opens_one_connection_per_probe_not_one_per_pool_slot(mysql_via_forwarder):  # noqa: F811
    """MariaDB cut (pooled connections dropped, new ones closed at once): after
    the first probe has found the pooled connections dead, each probe tries
    exactly one fresh connection and says not ready; the retry meant for dead
    pooled connections does not turn a refused server into pool.max + 1
    connection attempts per operation."""
    from twisted.internet import reactor

    forwarder, via, _direct = mysql_via_forwarder
    store = Store(via, reactor, query_timeout=QUERY_TIMEOUT)
    store.startService()
    try:
        await store.ensure_schema()
        assert await store.check() is True
        forwarder.refuse_new = True
        forwarder.cut()
        assert await store.check() is False  # finds the pooled connections dead
        for _ in range(3):
            before = forwarder.accepted
            assert await store.check() is False
            assert forwarder.accepted - before == 1
        forwarder.refuse_new = False
        assert await store.check() is True
    finally:
        await store.stopService()


class DroppingPool:
    """A pool whose every operation fails as on a connection the server
    dropped, taking `cost` seconds of the clock: records each deadline given."""

    max = 3

    def __init__(self, cost: float) -> None:
        self.cost = cost
        self.deadlines: list[float] = []

    def run(self, clock, timeout, interaction, *args, settle=False, cancel_running=None):
        import pymysql
        from twisted.internet.defer import fail

        self.deadlines.append(timeout)
        clock.advance(self.cost)
        return fail(pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query"))


@pytest_twisted.ensureDeferred
async def test_retries_on_dropped_connections_share_the_operations_one_deadline():
    """The retries of one operation never run past its deadline: with a 2.5 s
    deadline and attempts that take 1 s each, three attempts are made with
    2.5, 1.5 and 0.5 s left, then the caller gets StoreUnavailable."""
    clock = Clock()
    store = Store("mysql://root@127.0.0.1:1/none", clock, query_timeout=2.5)
    store.pool = DroppingPool(cost=1.0)
    with pytest.raises(StoreUnavailable):
        await store._run(lambda cursor: None)
    assert store.pool.deadlines == [2.5, 1.5, 0.5]


# ----- 2. the README's and docs' blocks and commands, beyond the sh/python blocks
#
# tests/test_readme.py runs the ```sh/```python blocks. It left out what an
# operator copies just as often: the INI and YAML configuration examples, the
# JSON examples, the SQL for sizing, the error line the README promises, and
# the `dashd` subcommands of the README's command table. Each is checked here.

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import MYSQL_URL
from test_readme import DOCUMENTS, ROOT, workspace  # noqa: F401 (fixture: a daemon as after `make run`)

BIN = Path(sys.executable).parent


def fenced_blocks(language: str) -> list[tuple[str, str]]:
    """(document:line, code) of every ```<language> block, also indented
    ones (inside a list item), with the indentation removed."""
    found = []
    for path in DOCUMENTS:
        lines = path.read_text().splitlines()
        index = 0
        while index < len(lines):
            fence = re.match(r"^(\s*)```(\w*)\s*$", lines[index])
            if not fence:
                index += 1
                continue
            indent = fence.group(1)
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip().startswith("```"))
            if fence.group(2).lower() == language:
                code = "\n".join(line[len(indent) :] for line in lines[index + 1 : end]) + "\n"
                found.append((f"{path.relative_to(ROOT)}:{index + 1}", code))
            index = end + 1
    return found


def dashd(work: Path, env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`.venv/bin/dashd ARGS` in the workspace, as the README runs it."""
    return subprocess.run(
        [str(work / ".venv" / "bin" / "dashd"), *args],
        cwd=work,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


INI_BLOCKS = fenced_blocks("ini")


def earlier_channels(where: str) -> list[str]:
    """The [channel:NAME] sections of the ini blocks before `where` in its file."""
    path, line = where.rsplit(":", 1)
    sections = []
    for other, code in INI_BLOCKS:
        other_path, other_line = other.rsplit(":", 1)
        if other_path == path and int(other_line) < int(line):
            sections += re.findall(r"^\[channel:[^\]]+\]\n(?:(?!\[).*\n?)*", code, flags=re.M)
    return [s if s.endswith("\n") else s + "\n" for s in sections]


@pytest.mark.parametrize("block", INI_BLOCKS, ids=[b[0] for b in INI_BLOCKS])
def test_every_ini_example_is_a_configuration_dashd_accepts(block, tmp_path):
    """An operator pastes these into dashd.ini: `dashd check-config` must accept them."""
    where, code = block
    config = tmp_path / "dashd.ini"
    # A doc builds one dashd.ini section by section: routes name the channels
    # its earlier blocks define, so those come along.
    config.write_text("".join(earlier_channels(where)) + code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
    result = subprocess.run(
        [str(BIN / "dashd"), "check-config", "--config", str(config), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, f"{where}: {result.stderr}"
    assert "configuration OK" in result.stdout


def test_the_shipped_dashd_ini_is_accepted_by_check_config(tmp_path):
    """docs/operations.md: `dashd check-config --config /etc/dashd/dashd.ini`,
    with the file the systemd install copies there (etc/dashd.ini)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
    result = subprocess.run(
        [
            str(BIN / "dashd"),
            "check-config",
            "--config",
            str(ROOT / "etc" / "dashd.ini"),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_readmes_invalid_configuration_line_is_what_dashd_prints(tmp_path):
    """The README shows the one line a bad value gives; it must be that line."""
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"```\n(dashd: invalid configuration: interval = '0\.05'[^\n]*)\n```", readme)
    assert shown, "the README's example of a bad value moved: update this test"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}, "DASHD_INTERVAL": "0.05"}
    result = subprocess.run(
        [str(BIN / "dashd"), "check-config", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == shown.group(1)


ELISION = [(re.compile(r"\{\s*(\.\.\.|…)\s*\}"), "{}"), (re.compile(r",\s*(\.\.\.|…)\s*(?=[\]}])"), "")]
JSON_BLOCKS = fenced_blocks("json")


@pytest.mark.parametrize("block", JSON_BLOCKS, ids=[b[0] for b in JSON_BLOCKS])
def test_every_json_example_is_json_apart_from_marked_elisions(block):
    """Clients are written from these: each is one JSON value once the
    `...` elisions ({...}, `, ...]`) are taken out."""
    where, code = block
    for pattern, replacement in ELISION:
        code = pattern.sub(replacement, code)
    try:
        json.loads(code)
    except json.JSONDecodeError as e:
        pytest.fail(f"{where}: not JSON: {e}")


YAML_BLOCKS = fenced_blocks("yaml")


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=[b[0] for b in YAML_BLOCKS])
def test_every_yaml_example_parses(block):
    where, code = block
    assert isinstance(yaml.safe_load(code), dict), where


def test_the_prometheus_scrape_example_is_a_config_promtool_accepts(tmp_path):
    """docs/operations.md's prometheus.yml, with its token file present."""
    promtool = "/usr/bin/promtool"
    if not os.path.exists(promtool):
        pytest.skip("promtool (Debian's prometheus package) is not installed; .ci/run installs it")
    [(where, code)] = [b for b in YAML_BLOCKS if "scrape_configs" in b[1]]
    token = tmp_path / "dashd-metrics-token"
    token.write_text("secret\n")
    config = tmp_path / "prometheus.yml"
    config.write_text(code.replace("/etc/prometheus/dashd-metrics-token", str(token)))
    result = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{where}: {result.stdout}{result.stderr}"


def test_the_sizing_sql_runs_on_sqlite_as_written(workspace):  # noqa: F811
    """docs/operations.md 'To measure your own database': the SQLite query
    runs on the daemon's own database (sqlite3 dashd.db)."""
    work, _port, _env = workspace
    [(where, code)] = [b for b in fenced_blocks("sql") if "dbstat" in b[1]]
    sqlite_query = re.search(r"^(SELECT [^\n]*dbstat[^\n]*;)$", code, re.M).group(1)
    connection = sqlite3.connect(f"file:{work / 'state' / 'dashd.db'}?mode=ro", uri=True)
    try:
        rows = connection.execute(sqlite_query).fetchall()
    finally:
        connection.close()
    assert "samples" in {name for name, _ in rows}, where


def test_the_sizing_sql_runs_on_mariadb_as_written():
    if not MYSQL_URL:
        pytest.skip("DASHD_TEST_MYSQL_URL is not set")
    from test_reliability import direct_query

    [(where, code)] = [b for b in fenced_blocks("sql") if "information_schema" in b[1]]
    query = code[code.index("SELECT table_name") :].strip().rstrip(";").replace("'dashd'", "DATABASE()")
    direct_query(MYSQL_URL, query)  # raises on a syntax error or an unknown column


# The README's command table: every `dashd SUBCOMMAND` it names, run as written
# (placeholders filled in) in a workspace where `make run` serves.
README_SUBCOMMANDS = {"token", "migrate", "check-config", "user", "dev-cert", "agent", "conformance-echo"}


def test_the_command_table_names_only_subcommands_this_file_runs():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Commands") : readme.index("### Install modes")]
    named = set(re.findall(r"`dashd ([a-z][a-z-]+)", table))
    assert named == README_SUBCOMMANDS, f"new or removed README commands: {named ^ README_SUBCOMMANDS}"


def test_token_mint_list_revoke_as_the_readme_says(workspace):  # noqa: F811
    """`dashd token --role viewer|operator|admin --ttl 1h`, `dashd token list`,
    `dashd token revoke ID`: the running daemon accepts a minted token and
    refuses it once revoked."""
    work, port, env = workspace
    tokens = {}
    for role in ("viewer", "operator", "admin"):
        result = dashd(work, env, "token", "--role", role, "--ttl", "1h")
        assert result.returncode == 0, result.stderr
        tokens[role] = result.stdout.strip()
        assert tokens[role] and "\n" not in tokens[role]  # "prints only the token"

    def status(token: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/history?metrics=cpu_usage&from=-1m",
            headers={"Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    assert status(tokens["viewer"]) == 200
    listing = dashd(work, env, "token", "list")
    assert listing.returncode == 0, listing.stderr
    rows = [line.split() for line in listing.stdout.splitlines() if "viewer" in line]
    assert rows, listing.stdout
    ids = [row[0] for row in rows]
    revoked = [dashd(work, env, "token", "revoke", token_id) for token_id in ids]
    assert all(r.returncode == 0 for r in revoked), [r.stderr for r in revoked]
    deadline = time.monotonic() + 30  # the README says within 5 s; this bounds a hang, not the speed
    while status(tokens["viewer"]) != 401:
        assert time.monotonic() < deadline, "the running daemon still accepts a revoked token"
        time.sleep(0.2)
    assert status(tokens["operator"]) == 200


def test_migrate_and_check_config_as_the_readme_says(workspace):  # noqa: F811
    work, _port, env = workspace
    migrate = dashd(work, env, "migrate")
    assert migrate.returncode == 0 and "database up to date" in migrate.stdout, migrate.stderr
    check = dashd(work, env, "check-config")
    assert check.returncode == 0 and "configuration OK" in check.stdout, check.stderr


def test_user_commands_as_the_readme_says(workspace):  # noqa: F811
    """`dashd user add NAME --role ROLE` / list / passwd / disable / enable /
    role NAME --role R, passwords on stdin."""
    work, _port, env = workspace
    steps = [
        (("user", "add", "alice", "--role", "operator"), "a long password 1\n"),
        (("user", "passwd", "alice"), "a long password 2\n"),
        (("user", "disable", "alice"), None),
        (("user", "enable", "alice"), None),
        (("user", "role", "alice", "--role", "admin"), None),
    ]
    for args, stdin in steps:
        result = dashd(work, env, *args, stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.stderr}"
    listing = dashd(work, env, "user", "list")
    assert listing.returncode == 0, listing.stderr
    assert "alice\tadmin\tactive" in listing.stdout.splitlines(), listing.stdout


def test_dev_cert_writes_under_the_state_dir_as_the_readme_says(workspace):  # noqa: F811
    """`dashd dev-cert`: to STATE_DIR/tls by default (the daemon's state
    directory, ./state after `make run`), a certificate for localhost."""
    from cryptography import x509

    work, _port, env = workspace
    result = dashd(work, env, "dev-cert")
    assert result.returncode == 0, result.stderr
    cert = x509.load_pem_x509_certificate((work / "state" / "tls" / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert (work / "state" / "tls" / "key.pem").stat().st_mode & 0o077 == 0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_agent_and_conformance_echo_start_as_the_readme_says(workspace):  # noqa: F811
    """`dashd agent --hub ws://HUB:8080/ingest --token T` with T from `dashd
    token --role agent --subject HOSTNAME` connects to the hub;
    `dashd conformance-echo --listen tcp:9001` listens."""
    import socket

    work, port, env = workspace
    minted = dashd(work, env, "token", "--role", "agent", "--subject", "readme-agent", "--ttl", "1h")
    assert minted.returncode == 0, minted.stderr
    agent = subprocess.Popen(
        [
            str(work / ".venv" / "bin" / "dashd"),
            "agent",
            "--hub",
            f"ws://127.0.0.1:{port}/ingest",
            "--token",
            minted.stdout.strip(),
            "--host-name",
            "readme-agent",
        ],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    echo_port = free_port()
    echo = subprocess.Popen(
        [str(work / ".venv" / "bin" / "dashd"), "conformance-echo", "--listen", f"tcp:{echo_port}:interface=127.0.0.1"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", echo_port), timeout=1).close()
                break
            except OSError:
                assert echo.poll() is None and time.monotonic() < deadline, "conformance-echo never listened"
                time.sleep(0.1)
        time.sleep(2)  # a few agent intervals
        assert agent.poll() is None, agent.stdout.read()
    finally:
        for process in (agent, echo):
            process.terminate()
        agent_output, _ = agent.communicate(timeout=30)
        echo.communicate(timeout=30)
    assert "connected to the hub as readme-agent" in agent_output, agent_output
    assert "Traceback" not in agent_output, agent_output


def test_no_block_the_doc_test_runs_starts_containers_services_or_root_commands():
    """test_readme runs every unmarked sh block on the tester's machine: one
    that calls docker, systemctl or sudo (the `docker compose --profile host`
    block was unmarked) would build and start containers there, or fail
    where the tool is missing. Such blocks must carry a doc-test: skip."""
    from test_readme import RUNNABLE

    risky = re.compile(r"(^|[\s;|&(])(docker|systemctl|sudo|useradd|journalctl)\s", re.M)
    offenders = [b.id for b in RUNNABLE if risky.search(b.code)]
    assert offenders == [], f"mark these with <!-- doc-test: skip: REASON -->: {offenders}"


@pytest_twisted.ensureDeferred
async def test_a_connection_aborted_at_its_deadline_is_not_reported_as_lost(mysql_via_forwarder, store_events):  # noqa: F811
    """In a stall the store aborts the connection it waited on; the log said
    both "database unavailable" and "database connection lost (InterfaceError:
    (0, ''))", the second being dashd's own abort. Only the first is true."""
    from twisted.internet import reactor

    forwarder, via, _direct = mysql_via_forwarder
    store = Store(via, reactor, query_timeout=QUERY_TIMEOUT)
    store.startService()
    try:
        await store.ensure_schema()
        forwarder.stall()
        assert await store.check() is False
        with pytest.raises(StoreUnavailable):
            await store._run(lambda cursor: cursor.execute("SELECT 1"))
        forwarder.resume()
        assert await store.check() is True
        assert len(lines(store_events, "database unavailable")) == 1
        assert lines(store_events, "connection lost") == []
    finally:
        forwarder.resume()
        await store.stopService()


def _shape(value):
    """The keys of a JSON value, nested (values left out)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    return type(value).__name__ if isinstance(value, (bool, str)) else "number" if value is not None else "null"


def test_the_documented_health_and_ready_answers_have_the_live_shape(workspace):  # noqa: F811
    """docs/operations.md shows what /api/health and /api/ready answer; load
    balancers and scripts are written from it. (The ready example lacked
    the `startup` check.)"""
    work, port, _env = workspace
    text = (ROOT / "docs" / "operations.md").read_text()
    health_doc = json.loads(re.search(r'`(\{"status":"ok","time":[^`]*\})`', text).group(1))
    [(_, ready_code)] = [b for b in JSON_BLOCKS if b[0].startswith("docs/operations.md") and '"checks"' in b[1]]
    live = {}
    for path in ("/api/health", "/api/ready"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            live[path] = json.loads(response.read())
    assert _shape(live["/api/health"]) == _shape(health_doc)
    documented = _shape(json.loads(ready_code))
    actual = _shape(live["/api/ready"])
    actual["checks"]["collector"]["last_sample_age"] = "number"  # null before the first sample
    assert actual == documented


def test_a_port_in_use_is_one_line_and_exit_1_not_a_traceback(tmp_path):
    """`make run` while another dashd (or anything) holds the port: twistd
    printed two chained tracebacks ending in CannotListenError. It is an
    operator's everyday mistake: one line naming the endpoint and why."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
        result = subprocess.run(
            [
                str(BIN / "twistd"),
                "--nodaemon",
                "--pidfile=",
                "dashd",
                "--listen",
                f"tcp:{port}:interface=127.0.0.1",
                "--state-dir",
                str(tmp_path / "state"),
                "--static",
                str(tmp_path / "none"),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"dashd: cannot listen on tcp:{port}:interface=127.0.0.1: Address already in use" in output
    assert "Traceback" not in output, output
