"""Issue 18 item 6: reproducible installs. requirements.lock (runtime) and
requirements-test.lock (runtime + the `test` extra) pin every dependency
with hashes; make, CI and the Dockerfile install from them; setup.cfg keeps
the ranges for people who install dashd as a library."""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from a pip-compile --generate-hashes file."""
    text = path.read_text().replace("\\\n", " ")
    found = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)(.*)$", line)
        assert match, f"{path.name}: not an exact pin: {line!r}"
        found[canonicalize_name(match.group(1))] = (
            match.group(2),
            re.findall(r"--hash=sha256:([0-9a-f]{64})", match.group(3)),
        )
    return found


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "setup.cfg")
    return parser


def requirements(value: str) -> list[Requirement]:
    return [Requirement(line.strip()) for line in value.strip().splitlines() if line.strip()]


def test_every_dependency_is_pinned_with_hashes_within_the_setup_cfg_ranges():
    runtime = pins(ROOT / "requirements.lock")
    test = pins(ROOT / "requirements-test.lock")
    assert runtime and all(hashes for _, hashes in runtime.values())
    assert all(hashes for _, hashes in test.values())
    config = setup_cfg()
    for requirement in requirements(config["options"]["install_requires"]):
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{name} is in setup.cfg but not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(runtime[name][0], prereleases=True)
    for requirement in requirements(config["options.extras_require"]["test"]):
        name = canonicalize_name(requirement.name)
        assert name in test, f"{name} (test extra) is not in requirements-test.lock: run `make lock`"
        assert requirement.specifier.contains(test[name][0], prereleases=True)
    # The test lock is the runtime lock plus the test tools, never other versions.
    assert {name: test[name][0] for name in runtime} == {name: version for name, (version, _) in runtime.items()}


def test_the_test_environment_was_installed_from_the_locks():
    """What `make install test-deps` put in this venv is exactly what the locks say."""
    locked = {**pins(ROOT / "requirements.lock"), **pins(ROOT / "requirements-test.lock")}
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {
        name: (version, installed.get(name)) for name, (version, _) in locked.items() if installed.get(name) != version
    }
    assert wrong == {}, f"(locked, installed): {wrong}; run `make install test-deps`"


def test_make_ci_and_the_dockerfile_install_from_the_locks():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "pip install --quiet --no-deps --no-build-isolation ." in makefile
    assert "pip install --quiet --require-hashes -r requirements-test.lock" in makefile
    assert re.search(r"^lock:", makefile, re.M) and "pip-compile" in makefile
    assert re.search(r"^run: install", makefile, re.M) and re.search(r"^test-py: install test-deps", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes --wheel-dir /wheels -r requirements.lock" in dockerfile
    header = (ROOT / "requirements.lock").read_text().splitlines()[:6]
    assert any("make lock" in line for line in header)  # says how to refresh it


def test_pip_check_finds_the_locked_set_complete():
    """No installed distribution lacks a dependency (what `make install`
    checks to catch a setup.cfg change that was not followed by `make lock`)."""
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
