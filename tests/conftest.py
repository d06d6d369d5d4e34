"""Fixtures: settings for a throwaway daemon, the real service tree started
in-process on 127.0.0.1 port 0, and the database URLs the store suite runs
against (SQLite always; MariaDB/MySQL when DASHD_TEST_MYSQL_URL is set).

DASHD_TEST_DB=mysql runs every daemon `make_settings` builds (without an
explicit `db`) on a fresh MariaDB/MySQL database of its own on the
DASHD_TEST_MYSQL_URL server, dropped after the test, instead of SQLite in
the state directory: the daemon-level suite on the other dialect."""

from __future__ import annotations

import os
import uuid
from contextlib import ExitStack, contextmanager

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.logger import formatEvent, globalLogPublisher

from dashd.auth.tokens import TokenIssuer, load_or_create_secret
from dashd.settings import Settings, load_settings
from dashd.tap import DashdService, build_daemon

MYSQL_URL = os.environ.get("DASHD_TEST_MYSQL_URL", "")
REQUIRE_MYSQL = os.environ.get("DASHD_REQUIRE_MYSQL") == "1"
DAEMON_DB = os.environ.get("DASHD_TEST_DB", "sqlite")
if DAEMON_DB not in ("sqlite", "mysql") or (DAEMON_DB == "mysql" and not MYSQL_URL):
    raise RuntimeError("DASHD_TEST_DB must be 'sqlite' or 'mysql' (which needs DASHD_TEST_MYSQL_URL)")


def database_params():
    """SQLite, and MySQL when configured (CI requires it)."""
    params = [pytest.param("sqlite", id="sqlite")]
    if MYSQL_URL:
        params.append(pytest.param("mysql", id="mysql"))
    elif REQUIRE_MYSQL:
        raise RuntimeError("DASHD_REQUIRE_MYSQL=1 but DASHD_TEST_MYSQL_URL is not set")
    else:
        params.append(
            pytest.param(
                "mysql",
                id="mysql",
                marks=pytest.mark.skip(
                    reason="DASHD_TEST_MYSQL_URL is not set (e.g. mysql://root@127.0.0.1:3306/test)"
                ),
            )
        )
    return params


@pytest.fixture
def db_url(request, tmp_path):
    """A fresh, empty database of the parametrized dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    with mysql_database() as url:
        yield url


@contextmanager
def mysql_database():
    """A uniquely named, empty database on the DASHD_TEST_MYSQL_URL server,
    dropped on exit."""
    import pymysql

    from dashd.settings import check_db_url

    base = check_db_url(MYSQL_URL)
    name = f"dashd_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        password = f":{base.password}" if base.password else ""
        yield f"mysql://{base.user}{password}@{base.host}:{base.port}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


def pytest_generate_tests(metafunc):
    if "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_url", database_params(), indirect=True)


@pytest.fixture
def make_settings(tmp_path):
    databases = ExitStack()  # DASHD_TEST_DB=mysql: one database per test, like the one SQLite file
    daemon_db: list[str] = []

    def make(**overrides) -> Settings:
        if DAEMON_DB == "mysql" and "db" not in overrides:
            if not daemon_db:
                daemon_db.append(databases.enter_context(mysql_database()))
            overrides = {"db": daemon_db[0], **overrides}
        values = {
            "state_dir": str(tmp_path / "state"),
            "listen": "tcp:0:interface=127.0.0.1",
            "interval": "0.2",
            "batch_interval": "0.2",
            "ping_interval": "0",
            "static": str(tmp_path / "no-frontend"),
            "host_name": "testhost",
            # The issue 19 collectors (on by default) only where a test asks
            # for them: hundreds of test daemons reading /proc on a shared
            # machine slow every other test (test_collect_wiring checks the default).
            "collectors": "host",
        }
        values.update({k: v for k, v in overrides.items()})
        return load_settings(values, environ={})

    with databases:
        yield make


class RunningDaemon:
    """The real service tree, listening on 127.0.0.1:<port>."""

    def __init__(self, service: DashdService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.port = 0
        self.issuer = TokenIssuer(load_or_create_secret(settings.secret_path))

    @property
    def core(self):
        """The root service: it names the parts it owns (store, hub, connections, ...)."""
        return self.service

    def url(self, path: str = "/dashboard", scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def token(self, role: str = "viewer", ttl: float = 3600, subject: str | None = None) -> str:
        return self.issuer.mint(subject or f"test-{role}", role, ttl)[0]

    async def start(self) -> RunningDaemon:
        self.service.startService()
        port = await self.service.listeners[0].ready
        self.port = port.getHost().port
        await self.service.prepared
        return self

    async def stop(self) -> None:
        if self.service.running:
            await self.service.stopService()


async def start_daemon(settings: Settings) -> RunningDaemon:
    return await RunningDaemon(build_daemon(settings, reactor), settings).start()


@pytest_twisted.async_yield_fixture
async def daemon(make_settings):
    running = await start_daemon(make_settings())
    yield running
    await running.stop()


@pytest.fixture
def logged_failures():
    """Collects logged failures; the test asserts on them (no unhandled errors)."""
    failures = []

    def observer(event):
        if event.get("log_failure") is not None or event.get("isError"):
            failures.append(event)

    globalLogPublisher.addObserver(observer)
    yield failures
    globalLogPublisher.removeObserver(observer)


def is_unhandled_error(event: dict) -> bool:
    """A failure nobody handled: Twisted's "Unhandled error in Deferred",
    "Unhandled Error" (log.err, a reactor call that raised), Autobahn's
    "Unhandled exception"."""
    if event.get("log_failure") is None and not event.get("isError"):
        return False
    return "unhandled" in (formatEvent(event) or "").lower() or "unhandled" in str(event.get("why") or "").lower()


@pytest.fixture(autouse=True)
def fail_on_unhandled_errors(request):
    """Every test fails when an unhandled error is logged while it runs (a
    dropped Deferred's failure, a reactor call that raised): such an error
    breaks the daemon silently, so no test may pass over one. A test that
    provokes one on purpose says so with @pytest.mark.allow_unhandled_errors."""
    unhandled: list[dict] = []

    def observer(event: dict) -> None:
        if is_unhandled_error(event):
            unhandled.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        yield
    finally:
        globalLogPublisher.removeObserver(observer)
    if unhandled and request.node.get_closest_marker("allow_unhandled_errors") is None:
        details = "\n".join(
            f"- {formatEvent(e)}\n{e['log_failure'].getTraceback() if e.get('log_failure') else ''}" for e in unhandled
        )
        pytest.fail(f"{len(unhandled)} unhandled error(s) logged during the test:\n{details}", pytrace=False)


def pytest_configure(config):
    config.addinivalue_line("markers", "allow_unhandled_errors: the test provokes an unhandled error on purpose")
