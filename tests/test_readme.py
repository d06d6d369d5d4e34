"""Issue 18 item 9: the README's and docs' shell and Python blocks run as
written after the two commands (`make run`, `make test`).

Every ```sh, ```bash and ```python block is either run here — against a
daemon this test starts — or is marked on the line before it with

    <!-- doc-test: skip: REASON -->

naming what it needs that a test cannot have (root and systemd, Docker,
MariaDB, a second host...). A marker without a reason is an error, and so is
a new unmarked block that fails. The blocks' Python cannot import the
test-only packages (they are hidden, as after `make run` alone). The one
liberty taken with a block: the daemon listens on a free port, which
replaces 8080 in it. Blocks that are skipped are still syntax-checked
(bash -n, compile())."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"sh": "sh", "bash": "sh", "shell": "sh", "console": "sh", "python": "python", "py": "python"}
SKIP = re.compile(r"^<!--\s*doc-test:\s*skip\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")
BLOCK_TIMEOUT = 120  # seconds; a bound on a hung block, not a speed goal


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    language: str  # "sh" or "python"
    code: str
    skip_reason: str | None  # None: run it; "": marked without a reason

    @property
    def id(self) -> str:
        return f"{self.document}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    found = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if not fence:
            index += 1
            continue
        start = index
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
        language = LANGUAGES.get(fence.group(1).lower())
        if language:
            previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
            marker = SKIP.match(previous.strip())
            reason = (marker.group("reason") or "") if marker else None
            found.append(
                Block(
                    str(path.relative_to(ROOT)), start + 1, language, "\n".join(lines[start + 1 : end]) + "\n", reason
                )
            )
        index = end + 1
    return found


ALL_BLOCKS = [block for path in DOCUMENTS for block in blocks_of(path)]


def test_the_documents_have_blocks_and_every_skip_says_why():
    assert any(b.document == "README.md" and b.skip_reason is None for b in ALL_BLOCKS)
    unexplained = [b.id for b in ALL_BLOCKS if b.skip_reason == ""]
    assert unexplained == [], f"doc-test: skip needs a reason: {unexplained}"


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_every_block_is_valid_syntax(block: Block):
    """Even the blocks this test cannot run parse (bash -n, compile())."""
    if block.language == "python":
        compile(block.code, block.id, "exec")
        return
    result = subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A directory laid out like the project after `make run`: .venv, and a
    daemon serving with state in ./state (as `make run` does)."""
    work = tmp_path_factory.mktemp("doc-blocks")
    (work / ".venv").symlink_to(BIN.parent)
    for name in ("etc", "tests", "docs", "Makefile", "setup.cfg", "README.md"):
        (work / name).symlink_to(ROOT / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASHD_")}
    log = open(work / "twistd.log", "w")
    process = subprocess.Popen(
        [
            str(BIN / "twistd"),
            "--nodaemon",
            "--pidfile=",
            "dashd",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            "--state-dir",
            "state",
            "--static",
            str(work / "no-frontend"),
            "--interval",
            "0.2",
        ],
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/ready", timeout=5) as response:
                if response.status == 200:
                    break
        except (OSError, urllib.error.HTTPError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"dashd did not start:\n{(work / 'twistd.log').read_text()}")
        time.sleep(0.1)
    env = {**env, "PYTHONPATH": str(runtime_only_site(work))}
    yield work, port, env
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def runtime_only_site(work: Path) -> Path:
    """A sitecustomize that hides the test-only packages from the blocks'
    Python (this venv has them; after `make run` alone they are absent)."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    from test_lock import pins

    runtime = set(pins(ROOT / "requirements.lock"))
    test_only = set(pins(ROOT / "requirements-test.lock")) - runtime
    hidden = sorted(
        module
        for module, dists in packages_distributions().items()
        if dists and all(canonicalize_name(d) in test_only for d in dists)
    )
    assert "websockets" in hidden and "pytest" in hidden
    site = work / ".runtime-only"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n"
        f"HIDDEN = {set(hidden)!r}\n"
        "class HideTestOnly:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in HIDDEN:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r} (test-only: make run does not install it)',"
        " name=name)\n"
        "sys.meta_path.insert(0, HideTestOnly())\n"
    )
    return site


RUNNABLE = [b for b in ALL_BLOCKS if b.skip_reason is None]


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.id for b in RUNNABLE])
def test_block_runs_as_written_against_a_running_daemon(block: Block, workspace):
    work, port, env = workspace
    code = re.sub(r"(127\.0\.0\.1|localhost):8080\b", rf"\g<1>:{port}", block.code)
    command = ["bash", "-e", "-o", "pipefail"] if block.language == "sh" else [str(BIN / "python"), "-"]
    result = subprocess.run(
        command, input=code, cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT
    )
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    for document, marker, needles in EXPECTED_OUTPUT:
        if block.document == document and marker in block.code:
            for needle in needles:
                assert needle in result.stdout, f"{block.id}: {needle!r} not in\n{result.stdout}"


# What a block's output shows, where its comments promise something:
# (document, a string that identifies the block, what the output contains).
EXPECTED_OUTPUT = [
    ("README.md", "connectWS(factory)", ("connection_ack", "cpu_usage", '"series"')),
    ("docs/operations.md", "promtool check rules", ("SUCCESS",)),
]


def test_expected_outputs_name_real_blocks():
    for document, marker, _ in EXPECTED_OUTPUT:
        assert any(b.document == document and marker in b.code for b in RUNNABLE), (document, marker)
