"""The container files, checked without a Docker engine (tests/test_image.py
builds and runs the image where one can run):
the Dockerfile's stages, user, healthcheck, port and volume; the
healthcheck command run for real against a daemon; docker-compose.yml's
services, dependencies, healthchecks and environment, the environment
parsed by dashd's own settings loader; the .dockerignore."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.utils import getProcessValue

from dashd.settings import check_db_url, load_settings

ROOT = Path(__file__).resolve().parent.parent


# ----- Dockerfile


def dockerfile_stages() -> list[dict]:
    """[{name, base, instructions: [(INSTRUCTION, args)]}] in order."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: list[dict] = []
    global_args: dict[str, str] = {}  # ARG defaults before the first FROM, as a plain build sees them
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), ""), default)
        if instruction == "FROM":
            args = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), ""), args)
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"name": name, "base": words[0], "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((instruction, args))
    return stages


def instructions(stage: dict, kind: str) -> list[str]:
    return [args for instruction, args in stage["instructions"] if instruction == kind]


def healthcheck_command(stage: dict) -> list[str]:
    (healthcheck,) = instructions(stage, "HEALTHCHECK")
    return json.loads(healthcheck.split(" CMD ", 1)[1])


def test_dockerfile_builds_the_frontend_then_installs_the_wheel_in_a_slim_image():
    stages = dockerfile_stages()
    assert [s["name"] for s in stages] == ["frontend", "wheels", "runtime"]
    frontend, wheels, runtime = stages
    assert frontend["base"].startswith("node:")
    runs = " && ".join(instructions(frontend, "RUN"))
    assert "npm ci" in runs and "npm run build" in runs
    assert "pip wheel --no-cache-dir --require-hashes --wheel-dir /wheels -r requirements.lock" in instructions(
        wheels, "RUN"
    )
    assert runtime["base"].startswith("python:") and "slim" in runtime["base"]
    assert any(
        "--no-index --no-deps /wheels/*.whl" in run and "from=wheels" in run for run in instructions(runtime, "RUN")
    )
    assert "--from=frontend /src/frontend/dist /opt/dashd/static" in instructions(runtime, "COPY")
    (user,) = instructions(runtime, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert instructions(runtime, "EXPOSE") == ["8080"]
    assert instructions(runtime, "VOLUME") == ["/var/lib/dashd"]
    env = " ".join(instructions(runtime, "ENV"))
    assert "DASHD_STATE_DIR=/var/lib/dashd" in env and "DASHD_STATIC=/opt/dashd/static" in env
    assert "DASHD_LISTEN=tcp:8080" in env
    assert json.loads(instructions(runtime, "ENTRYPOINT")[0]) == ["twistd", "--nodaemon", "--pidfile=", "dashd"]
    command = healthcheck_command(runtime)
    assert command[:2] == ["python", "-c"] and "curl" not in " ".join(command)
    assert "http://127.0.0.1:8080/api/ready" in command[2]


@pytest_twisted.ensureDeferred
async def test_the_image_healthcheck_command_passes_only_when_dashd_is_ready(daemon):
    """The HEALTHCHECK's own Python, pointed at a test daemon's port."""
    code = healthcheck_command(dockerfile_stages()[-1])[2].replace(":8080/", f":{daemon.port}/")
    assert await getProcessValue(sys.executable, ["-c", code], env=dict(os.environ), reactor=reactor) == 0
    collector = daemon.service.collector
    collector.stopService()
    collector.last_tick = (collector.last_tick or 0) - 60  # not ticking: /api/ready answers 503
    assert await getProcessValue(sys.executable, ["-c", code], env=dict(os.environ), reactor=reactor) != 0
    await daemon.stop()
    assert await getProcessValue(sys.executable, ["-c", code], env=dict(os.environ), reactor=reactor) != 0


def test_dockerignore_keeps_state_secrets_and_build_output_out_of_the_context():
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "state", ".env", "*.pem", "frontend/node_modules", "frontend/dist"} <= ignored
    # What the build copies must not be ignored.
    for needed in ("src", "twisted", "setup.cfg", "pyproject.toml", "README.md", "frontend"):
        assert needed not in ignored


# ----- docker-compose.yml (parsed with PyYAML; `docker compose` is not installed here)


_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value, environ: dict):
    """Compose's ${VAR}, ${VAR:-default}, ${VAR:?error} and $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, environ) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        current = environ.get(name)
        if operator in (":-", "-"):
            return current if current or (operator == "-" and current is not None) else argument
        if operator in (":?", "?"):
            if not current:
                raise ValueError(f"{name}: {argument}")
            return current
        return current or ""

    return _VARIABLE.sub(substitute, value)


def compose(environ: dict) -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML parses docker-compose.yml (a test dependency)")
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text()), environ)


def test_compose_runs_dashd_after_a_healthy_mariadb():
    services = compose({"DASHD_DB_PASSWORD": "pw"})["services"]
    assert set(services) == {"db", "dashd", "dashd-host"}  # dashd-host: tests/test_collect_compose.py
    db, dashd = services["db"], services["dashd"]
    assert db["image"].startswith("mariadb:")
    assert db["healthcheck"]["test"] == ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
    assert "--character-set-server=utf8mb4" in db["command"]
    assert "ports" not in db  # the database is reachable only from dashd
    assert dashd["build"] == "." and dashd["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert dashd["ports"] == ["8080:8080"]
    assert dashd["ulimits"]["nofile"] >= 20000  # max_connections' default
    assert any(volume.endswith(":/var/lib/dashd") for volume in dashd["volumes"])
    assert any(volume.endswith(":/var/lib/mysql") for volume in db["volumes"])


def test_compose_environment_is_a_valid_dashd_configuration_pointing_at_the_db_service():
    services = compose({"DASHD_DB_PASSWORD": "s3cret"})["services"]
    db_env, dashd_env = services["db"]["environment"], services["dashd"]["environment"]
    settings = load_settings({}, environ={k: str(v) for k, v in dashd_env.items()})
    url = check_db_url(settings.db_url)
    assert (url.dialect, url.host, url.port) == ("mysql", "db", 3306)
    assert (
        (url.user, url.password, url.database)
        == (db_env["MARIADB_USER"], db_env["MARIADB_PASSWORD"], db_env["MARIADB_DATABASE"])
        == ("dashd", "s3cret", "dashd")
    )
    assert settings.state_dir == "/var/lib/dashd" and settings.listen == ("tcp:8080",)
    assert settings.log_format == "json" and settings.metrics_token == ""
    container_port = services["dashd"]["ports"][0].split(":")[-1]
    assert settings.listen[0] == f"tcp:{container_port}"


def test_compose_refuses_to_start_without_a_database_password():
    with pytest.raises(ValueError, match="DASHD_DB_PASSWORD"):
        compose({})
