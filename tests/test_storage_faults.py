"""Store faults with the whole daemon running: a full disk (SQLite) and a
MariaDB outage keep the live stream going, show in /api/ready, and lose
none of the samples that fit the in-memory queue."""

from __future__ import annotations

import pytest
import pytest_twisted

from conftest import start_daemon
from fakes import authed
from httpclient import http
from test_store import MySQLOutage, eventually


async def _ready(daemon) -> tuple[int, dict]:
    response = await http("GET", daemon.url("/api/ready", scheme="http"))
    return response.status, response.json()


async def _updates(client, count: int) -> list[dict]:
    return [await client.recv_type("metrics_update", timeout=5) for _ in range(count)]


async def _stored_seqs(daemon, seqs: list[int]) -> set[int]:
    messages = await daemon.core.store.read_stream(min(seqs), max(seqs))
    return {m.seq for m in messages if m.type == "metrics_update"}


@pytest_twisted.ensureDeferred
async def test_sqlite_disk_full_keeps_streaming_reports_not_ready_and_writes_later(make_settings):
    daemon = await start_daemon(make_settings())
    try:
        client = await authed(daemon)
        store = daemon.core.store
        pages = (await store.fetchall("PRAGMA page_count"))[0][0]
        await store.fetchall(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
        during = await _updates(client, 10)  # the live stream goes on

        async def not_ready() -> bool:
            return (await _ready(daemon))[0] == 503

        await eventually(not_ready)
        status, body = await _ready(daemon)
        assert body["checks"]["store"]["ok"] is False and body["checks"]["store"]["pending_rows"] > 0
        await store.fetchall("PRAGMA max_page_count = 1073741823")  # space again

        async def ready() -> bool:
            return (await _ready(daemon))[0] == 200

        await eventually(ready)
        seqs = [m["seq"] for m in during]
        assert await _stored_seqs(daemon, seqs) == set(seqs)  # nothing lost
        client.close()
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_mariadb_outage_keeps_streaming_reports_not_ready_and_writes_later(make_settings):
    from conftest import MYSQL_URL

    if not MYSQL_URL:
        pytest.skip("DASHD_TEST_MYSQL_URL is not set")
    import uuid

    import pymysql

    from dashd.settings import check_db_url

    base = check_db_url(MYSQL_URL)
    name = f"dashd_test_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host=base.host, port=base.port, user=base.user, password=base.password)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    outage = MySQLOutage(f"mysql://{base.user}@{base.host}:{base.port}/{name}")
    await outage.up()
    daemon = None
    try:
        daemon = await start_daemon(make_settings(db=outage.store_url))
        client = await authed(daemon)
        await outage.down()
        during = await _updates(client, 10)

        async def not_ready() -> bool:
            return (await _ready(daemon))[0] == 503

        await eventually(not_ready)
        await outage.up()

        async def ready() -> bool:
            return (await _ready(daemon))[0] == 200

        await eventually(ready, timeout=30)
        seqs = [m["seq"] for m in during]
        assert await _stored_seqs(daemon, seqs) == set(seqs)
        client.close()
    finally:
        if daemon is not None:
            await daemon.stop()
        await outage.close()
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()
