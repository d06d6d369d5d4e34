"""dashd under systemd: the unit files pass `systemd-analyze verify`, the
daemon adopts a socket passed the way systemd passes it (LISTEN_FDS) and
keeps connection attempts across a restart, and it speaks sd_notify
(READY, WATCHDOG, STOPPING) to a real AF_UNIX datagram socket."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from twisted.internet.task import Clock
from websockets.sync.client import connect as ws_connect

from dashd.ops.sdnotify import SystemdNotifier, WatchdogService

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "etc" / "systemd"
BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0


def unit_directives(path: Path) -> dict[str, list[tuple[str, str]]]:
    """section -> [(key, value)], continuation lines joined (systemd units
    repeat keys, which configparser refuses)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def directive(sections: dict, section: str, key: str) -> list[str]:
    return [value for name, value in sections[section] if name == key]


# ----- the unit files


def test_service_unit_runs_twistd_hardened_as_its_own_user():
    service = unit_directives(UNITS / "dashd.service")
    socket_unit = unit_directives(UNITS / "dashd.socket")
    (exec_start,) = directive(service, "Service", "ExecStart")
    argv = exec_start.split()
    assert argv[0] == "/opt/dashd/venv/bin/twistd" and argv[1:4] == ["--nodaemon", "--pidfile=", "dashd"]
    assert argv[argv.index("--config") + 1] == "/etc/dashd/dashd.ini"
    endpoint = argv[argv.index("--listen") + 1]
    # The endpoint adopts the socket the socket unit names.
    (name,) = directive(socket_unit, "Socket", "FileDescriptorName")
    assert endpoint == f"systemd:domain=INET:name={name}"
    assert directive(socket_unit, "Socket", "ListenStream") == ["0.0.0.0:8080"]
    assert "dashd.socket" in directive(service, "Unit", "Requires")
    expected = {
        "Type": "notify",
        "User": "dashd",
        "Restart": "on-failure",
        "EnvironmentFile": "-/etc/dashd/dashd.env",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "StateDirectory": "dashd",
        "ReadWritePaths": "/var/lib/dashd",
        "CapabilityBoundingSet": "",
        "WatchdogSec": "30s",
        "LimitNOFILE": "65536",
    }
    for key, value in expected.items():
        assert directive(service, "Service", key) == [value], key
    assert argv[argv.index("--state-dir") + 1] == "/var/lib/dashd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_unit_files_pass_systemd_analyze_verify(tmp_path):
    """verify checks syntax, directives and that ExecStart exists, so the
    copy points at this venv's twistd instead of /opt/dashd."""
    for unit in ("dashd.service", "dashd.socket"):
        text = (UNITS / unit).read_text().replace("/opt/dashd/venv/bin/twistd", str(BIN / "twistd"))
        (tmp_path / unit).write_text(text)
    units = [str(tmp_path / "dashd.socket"), str(tmp_path / "dashd.service")]
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units], capture_output=True, text=True, timeout=60
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "dashd" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr
    # The hardening, as systemd itself scores it (0 = locked down, 10 = exposed).
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=25", "--no-pager", units[1]],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    if "--offline" in security.stderr or "unrecognized option" in security.stderr:
        pytest.skip("this systemd-analyze cannot score unit files offline")
    assert security.returncode == 0, security.stdout[-600:] + security.stderr


# ----- sd_notify


@pytest.fixture
def notify_socket():
    """A bound AF_UNIX datagram socket, like systemd's notification socket.
    (A short path: sun_path holds 108 bytes.)"""
    directory = tempfile.mkdtemp(prefix="sdn-", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    yield sock, path
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


def messages_until(sock: socket.socket, wanted: str, timeout: float = 10.0) -> list[str]:
    """Datagrams received until one contains `wanted` (inclusive)."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            raise AssertionError(f"no {wanted!r} within {timeout}s; got {got}") from None
        if wanted in got[-1].split("\n"):
            return got


def test_notifier_writes_assignments_to_a_unix_datagram_socket(notify_socket):
    sock, path = notify_socket
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready("serving")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving"
    assert notifier.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping() and sock.recv(4096) == b"STOPPING=1"


def test_notifier_speaks_to_abstract_sockets_too():
    name = f"dashd-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert SystemdNotifier.from_environment({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"


def test_notifier_outside_systemd_is_a_no_op_and_never_raises(tmp_path):
    assert not SystemdNotifier.from_environment({}).notify("READY=1")
    gone = SystemdNotifier(str(tmp_path / "nobody-listens"))
    assert gone.enabled and gone.notify("READY=1") is False


@pytest.mark.parametrize(
    "environ,pid,interval",
    [
        ({"WATCHDOG_USEC": "30000000"}, 7, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}, 7, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"}, 7, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, 7, None),
        ({"WATCHDOG_USEC": "soon"}, 7, None),
        ({}, 7, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(environ, pid, interval):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "/run/x", **environ}, pid=pid)
    assert notifier.watchdog_interval == interval


def test_watchdog_pings_only_while_the_daemon_is_healthy(notify_socket):
    sock, path = notify_socket
    clock = Clock()
    healthy = [True]
    service = WatchdogService(SystemdNotifier(path, watchdog_interval=5.0), clock, lambda: healthy[0])
    service.startService()
    assert sock.recv(4096) == b"WATCHDOG=1"  # at once
    clock.advance(5)
    assert sock.recv(4096) == b"WATCHDOG=1"
    healthy[0] = False
    clock.advance(5)
    clock.advance(5)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # silence: systemd will restart us
    healthy[0] = True
    clock.advance(5)
    sock.setblocking(True)
    assert sock.recv(4096) == b"WATCHDOG=1"
    service.stopService()
    assert not clock.getDelayedCalls()


# ----- socket activation, as systemd does it


# Runs in the child: puts the inherited listening socket at fd 3 and sets
# LISTEN_PID to its own pid, then becomes twistd (same pid), which is
# exactly what systemd does between fork and exec.
ACTIVATE = """
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="http")
os.execv(sys.argv[2], sys.argv[2:])
"""


class ActivatedDaemon:
    def __init__(self, listener: socket.socket, state: Path, notify_path: str) -> None:
        self.port = listener.getsockname()[1]
        self.log = open(state.parent / f"activated-{time.monotonic_ns()}.log", "w+")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHD_", "LISTEN_", "NOTIFY_", "WATCHDOG_"))}
        env.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="400000")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ACTIVATE,
                str(listener.fileno()),
                str(BIN / "twistd"),
                "--nodaemon",
                "--pidfile=",
                "dashd",
                "--listen",
                "systemd:domain=INET:name=http",
                "--state-dir",
                str(state),
                "--interval",
                "0.2",
                "--static",
                str(state / "none"),
            ],
            pass_fds=(listener.fileno(),),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def token(state: Path) -> str:
    result = subprocess.run(
        [str(BIN / "dashd"), "token", "--role", "viewer", "--ttl", "10m", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def first_messages(port: int, bearer: str, count: int = 2, open_timeout: float = 10) -> list[dict]:
    with ws_connect(
        f"ws://127.0.0.1:{port}/dashboard",
        additional_headers={"Authorization": f"Bearer {bearer}"},
        open_timeout=open_timeout,
    ) as client:
        return [json.loads(client.recv(timeout=10)) for _ in range(count)]


def test_socket_activation_notify_watchdog_and_a_restart_that_drops_no_connection(tmp_path, notify_socket):
    """The daemon serves on the socket it inherits at fd 3, tells the
    notification socket READY=1, pings WATCHDOG=1, says STOPPING=1 on
    SIGTERM; a client that connects while no daemon runs waits in the
    socket's backlog and is served by the next one."""
    sock, notify_path = notify_socket
    state = tmp_path / "state"
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # what the socket unit does; it stays open here as systemd keeps it
    viewer = token(state)
    daemon = ActivatedDaemon(listener, state, notify_path)
    try:
        got = messages_until(sock, "READY=1", START_TIMEOUT)
        assert any("STATUS=dashd" in m and "systemd:domain=INET:name=http" in m for m in got), got
        messages_until(sock, "WATCHDOG=1", 5)
        ack, update = first_messages(daemon.port, viewer)
        assert ack["type"] == "connection_ack" and update["type"] == "metrics_update"
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/api/ready", timeout=5) as response:
            assert json.loads(response.read())["status"] == "ready"
        assert daemon.terminate() in (0, -signal.SIGTERM)
        messages_until(sock, "STOPPING=1", 5)
        assert "Traceback" not in daemon.output()

        # Nobody is accepting now; the kernel queues this connection.
        results: list = []
        waiting = threading.Thread(
            target=lambda: results.append(first_messages(daemon.port, viewer, open_timeout=START_TIMEOUT))
        )
        waiting.start()
        time.sleep(0.5)
        assert not results
        daemon = ActivatedDaemon(listener, state, notify_path)
        waiting.join(START_TIMEOUT + 5)
        assert results and results[0][0]["type"] == "connection_ack", daemon.output()
        messages_until(sock, "READY=1", START_TIMEOUT)
        assert daemon.terminate() in (0, -signal.SIGTERM)
        assert "Traceback" not in daemon.output()
    finally:
        daemon.kill()
        listener.close()
