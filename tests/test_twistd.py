"""dashd as an operator runs it: the installed `twistd` and `dashd` commands
in real subprocesses, real sockets, SIGTERM and restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, env: dict | None = None, input: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, input=input, cwd=cwd
    )


class Daemon:
    def __init__(self, state: Path, port: int, *extra: str) -> None:
        self.state, self.port = state, port
        self.log = open(state.parent / f"twistd-{port}-{time.monotonic_ns()}.log", "w+")
        self.process = subprocess.Popen(
            [
                str(BIN / "twistd"),
                "--nodaemon",
                "--pidfile=",
                "dashd",
                "--listen",
                f"tcp:{port}:interface=127.0.0.1",
                "--state-dir",
                str(state),
                "--interval",
                "0.2",
                "--batch-interval",
                "0.5",
                "--static",
                str(state / "none"),
                *extra,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("DASHD_")},
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"dashd did not become ready:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def terminate(self) -> int:
        """SIGTERM; True when twistd shut down cleanly. (Twisted re-raises the
        signal that stopped it once shutdown is complete, so a clean stop
        reports -SIGTERM, as systemd expects.)"""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30) in (0, -signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def token(state: Path, role: str = "viewer") -> str:
    result = run(str(BIN / "dashd"), "token", "--role", role, "--ttl", "10m", "--state-dir", str(state))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_twistd_help_lists_the_dashd_plugin():
    result = run(str(BIN / "twistd"), "--help")
    assert result.returncode == 0
    assert any(line.split()[:1] == ["dashd"] for line in result.stdout.splitlines())
    options = run(str(BIN / "twistd"), "-n", "dashd", "--help")
    assert "--listen=" in options.stdout and "--interval=" in options.stdout and "--secret-file=" in options.stdout


def test_wheel_carries_the_plugin_and_the_migrations(tmp_path):
    result = run(str(BIN / "pip"), "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT))
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("dashd-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/dashd_plugin.py" in names
    assert "twisted/__init__.py" not in names and "twisted/plugins/__init__.py" not in names
    assert (
        "dashd/store/migrations/sqlite/0001_init.sql" in names and "dashd/store/migrations/mysql/0001_init.sql" in names
    )
    # Installed from the wheel alone, Twisted's plugin scan finds it.
    target = tmp_path / "site"
    assert run(str(BIN / "pip"), "install", "--no-deps", "-q", "--target", str(target), str(wheel)).returncode == 0
    # Scan only the wheel's plugin folder, so the venv's copy cannot answer.
    probe = (
        "import sys, os; sys.path.insert(0, sys.argv[1]); from twisted.plugin import getPlugins; "
        "from twisted.application.service import IServiceMaker; import twisted.plugins as p; "
        "p.__path__[:] = [os.path.join(sys.argv[1], 'twisted', 'plugins')]; "
        "print(sorted(pl.tapname for pl in getPlugins(IServiceMaker, p)))"
    )
    found = run(sys.executable, "-c", probe, str(target))
    assert found.stdout.strip() == "['dashd']", found.stdout + found.stderr


def test_token_prints_only_the_token(tmp_path):
    out = token(tmp_path / "state")
    assert len(out.splitlines()) == 1 and out.count(".") == 2
    secret = tmp_path / "state" / "secret.key"
    assert oct(secret.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "args,env,key",
    [
        (["--interval", "0.05"], {}, "interval"),
        (["--db", "postgres://x"], {}, "db"),
        ([], {"DASHD_INTERVAL": "often"}, "interval"),
        (["--listen", "nonsense"], {}, "listen"),
        (["--max-message-size", "huge"], {}, "max_message_size"),
    ],
)
def test_bad_configuration_fails_with_one_line_naming_the_key(tmp_path, args, env, key):
    result = run(str(BIN / "twistd"), "--nodaemon", "--pidfile=", "dashd", "--state-dir", str(tmp_path), *args, env=env)
    assert result.returncode != 0
    lines = [line for line in (result.stderr + result.stdout).splitlines() if key in line]
    assert lines, result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_bad_ini_is_reported_by_check_config(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text("[dashd]\ninterval = 99\n")
    result = run(str(BIN / "dashd"), "check-config", "--config", str(ini), "--state-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "interval" in result.stderr and "0.1 to 60" in result.stderr
    ini.write_text("[dashd]\ninterval = 2\n[rules]\nhot = cpu_usage > 90 for 1m level=warning\n")
    ok = run(str(BIN / "dashd"), "check-config", "--config", str(ini), "--state-dir", str(tmp_path))
    assert ok.returncode == 0 and "1 rules" in ok.stdout


def test_user_commands_read_the_password_from_stdin(tmp_path):
    state = str(tmp_path / "state")
    added = run(
        str(BIN / "dashd"),
        "user",
        "add",
        "alice",
        "--role",
        "operator",
        "--state-dir",
        state,
        input="correct horse battery\n",
    )
    assert added.returncode == 0, added.stderr
    listed = run(str(BIN / "dashd"), "user", "list", "--state-dir", state)
    assert "alice\toperator\tactive" in listed.stdout
    short = run(str(BIN / "dashd"), "user", "add", "bob", "--state-dir", state, input="short\n")
    assert short.returncode != 0 and "8" in short.stderr


def test_sigterm_closes_clients_with_1001_and_history_survives_a_restart(tmp_path):
    state = tmp_path / "state"
    port = free_port()
    daemon = Daemon(state, port)
    try:
        viewer = token(state)
        with ws_connect(
            f"ws://127.0.0.1:{port}/dashboard",
            additional_headers={"Authorization": f"Bearer {viewer}"},
            open_timeout=10,
        ) as client:
            assert json.loads(client.recv(timeout=5))["type"] == "connection_ack"
            before = [json.loads(client.recv(timeout=5)) for _ in range(5)]
            assert all(m["type"] == "metrics_update" for m in before)
            assert daemon.terminate()
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    client.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        first_run_end = before[-1]["data"]["timestamp"]
        daemon = Daemon(state, port)
        with ws_connect(
            f"ws://127.0.0.1:{port}/dashboard",
            additional_headers={"Authorization": f"Bearer {viewer}"},
            open_timeout=10,
        ) as client:
            ack = json.loads(client.recv(timeout=5))
            assert ack["data"]["seq"] >= before[-1]["seq"]  # seq keeps growing across the restart
            client.send(
                json.dumps(
                    {
                        "type": "history",
                        "correlation_id": "h",
                        "data": {"metrics": ["cpu_usage"], "from": "-5m", "max_points": 1000},
                    }
                )
            )
            while True:
                reply = json.loads(client.recv(timeout=10))
                if reply.get("correlation_id") == "h":
                    break
            assert reply["type"] == "history", reply
            points = reply["data"]["series"]["cpu_usage"]
            first_run_ms = (
                int(time.mktime(time.strptime(first_run_end[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1000
            )
            assert any(p["t"] <= first_run_ms for p in points), (first_run_end, points[:3])
            assert sum(p["count"] for p in points) >= 5
        assert daemon.terminate()
        assert "Traceback" not in daemon.output()
    finally:
        daemon.kill()
