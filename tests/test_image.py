"""Issue 18 item 8: the Docker image, built and run.

Where a Docker engine can run (Debian's docker.io as root; no engine was
running here before, so the test starts a private dockerd on its own socket
and stops it after), the Dockerfile is built from a base image made locally
with debootstrap (tests/image/base-image.sh: no container registry is
reachable), with the public base images left as the build arguments'
defaults. The container must serve /api/ready and a WebSocket stream, run
as uid 10001, and stop cleanly on SIGTERM. Without an engine the test skips
(DASHD_REQUIRE_DOCKER=1, set by .ci/run, makes that a failure); the
Dockerfile parse checks in tests/test_docker.py run everywhere."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("DASHD_IMAGE_TEST_CACHE", "/var/cache/dashd-image-test"))
BASE_TAG = "dashd-test-base:bookworm"
IMAGE_TAG = "dashd-test:latest"
DOCKER = "/usr/bin/docker"  # Debian's client, matching its engine (BuildKit built in)
BUILD_TIMEOUT = 1800  # seconds; bounds on a hung step, not speed goals
START_TIMEOUT = 120


def docker_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run dockerd"
    for tool in ("dockerd", "containerd", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install docker.io debootstrap; .ci/run does it)"
    if not Path(DOCKER).exists():
        return f"{DOCKER} is missing (Debian's docker.io client)"
    return None


@pytest.fixture(scope="module")
def docker_env():
    """A private dockerd (data under CACHE, so base images and build cache
    survive between runs); yields the environment for the docker client."""
    reason = docker_unavailable()
    if reason:
        if os.environ.get("DASHD_REQUIRE_DOCKER") == "1":
            pytest.fail(f"DASHD_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    run_dir = CACHE / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    sock = run_dir / "docker.sock"
    log = open(CACHE / "dockerd.log", "w")
    daemon = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(CACHE / "docker"),
            "--exec-root",
            str(run_dir / "exec"),
            "--host",
            f"unix://{sock}",
            "--pidfile",
            str(run_dir / "docker.pid"),
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--containerd-namespace",
            "dashd-test",
            "--containerd-plugins-namespace",
            "dashd-test-plugins",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "1"}
    deadline = time.monotonic() + START_TIMEOUT
    while subprocess.run([DOCKER, "info"], env=env, capture_output=True).returncode != 0:
        if daemon.poll() is not None or time.monotonic() > deadline:
            daemon.kill()
            pytest.fail(f"dockerd did not start:\n{(CACHE / 'dockerd.log').read_text()[-3000:]}")
        time.sleep(0.5)
    try:
        yield env
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
        log.close()


def docker(env: dict, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image(docker_env):
    # Re-imported every run (seconds, the rootfs is cached): it carries this
    # machine's CA bundle, which may change.
    made = subprocess.run(
        [str(ROOT / "tests" / "image" / "base-image.sh"), BASE_TAG, str(CACHE / "base")],
        env={**docker_env, "DOCKER": DOCKER},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert made.returncode == 0, made.stderr[-5000:]
    docker(
        docker_env,
        "build",
        "--network",
        "host",
        "--build-arg",
        f"NODE_IMAGE={BASE_TAG}",
        "--build-arg",
        f"PYTHON_IMAGE={BASE_TAG}",
        "--tag",
        IMAGE_TAG,
        str(ROOT),
        timeout=BUILD_TIMEOUT,
    )
    return IMAGE_TAG


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ready", timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def test_the_image_builds_serves_ready_and_a_websocket_and_stops_cleanly(docker_env, image):
    port = free_port()
    name = f"dashd-test-{port}"
    # Host networking: this engine runs without a bridge (no iptables here).
    docker(
        docker_env,
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "host",
        "--env",
        f"DASHD_LISTEN=tcp:{port}:interface=127.0.0.1",
        "--env",
        "DASHD_INTERVAL=0.2",
        image,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready(port):
            assert time.monotonic() < deadline, docker(docker_env, "logs", name, check=False).stdout
            time.sleep(0.2)
        assert docker(docker_env, "exec", name, "id", "-u").stdout.strip() == "10001"
        token = docker(docker_env, "exec", name, "dashd", "token", "--role", "viewer").stdout.strip()
        with ws_connect(
            f"ws://127.0.0.1:{port}/dashboard", additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=30
        ) as client:
            types = [json.loads(client.recv(timeout=30))["type"] for _ in range(3)]
        assert types[0] == "connection_ack" and "metrics_update" in types
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert b'<div id="root">' in response.read()  # the dashboard the frontend stage built
        docker(docker_env, "stop", "--time", "30", name, timeout=60)
        state = json.loads(docker(docker_env, "inspect", name).stdout)[0]["State"]
        logs = docker(docker_env, "logs", name).stdout + docker(docker_env, "logs", name).stderr
        assert state["ExitCode"] in (0, 128 + signal.SIGTERM), logs
        lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        assert any(line.get("message") == "dashd stopped" for line in lines), logs[-3000:]
        assert "Traceback" not in logs
    finally:
        docker(docker_env, "rm", "--force", name, check=False)
