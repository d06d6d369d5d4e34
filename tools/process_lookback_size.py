"""Measures the process look-back's bytes per stored table at the default
cadence (stream every 2 s, stored every 10 s) on this host, through the real
Store on SQLite and MariaDB (docs/storage.md, "Process look-back").

Usage: .venv/bin/python tools/process_lookback_size.py [MINUTES=12] [IDLE_CHILDREN=170]
Needs MariaDB at 127.0.0.1:3306 (root, no password); makes and drops a
database of its own."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pymysql
from twisted.internet import defer, reactor, task

from dashd.collect.hostroot import host_paths
from dashd.collect.processes import ProcessSnapshot, ProcessSource, ProcfsProcessReader
from dashd.store.database import Store
from dashd.store.processes import ProcessHistory

MINUTES = float(sys.argv[1]) if len(sys.argv) > 1 else 12
spawn = int(sys.argv[2]) if len(sys.argv) > 2 else 170
children = [subprocess.Popen(["sleep", str(MINUTES * 60 + 120)]) for _ in range(spawn)]
name = f"dashd_lookback_{uuid.uuid4().hex[:8]}"
admin = pymysql.connect(host="127.0.0.1", user="root")
admin.cursor().execute(f"CREATE DATABASE {name}")
sqlite_path = f"/tmp/lookback-{os.getpid()}.db"
stores = {
    "sqlite": Store(f"sqlite:///{sqlite_path}", reactor, retention_raw=7 * 86400),
    "mysql": Store(f"mysql://root@127.0.0.1:3306/{name}", reactor, retention_raw=7 * 86400),
}
histories = {}
source = ProcessSource(ProcfsProcessReader(host_paths("")), 50)
rows_per_table = []


async def main():
    for dialect, store in stores.items():
        store.startService()
        await store.ready()
        histories[dialect] = ProcessHistory(
            store, reactor, store_interval=10, prune_interval=3600, wall_clock_ms=lambda: int(time.time() * 1000)
        )
        histories[dialect].startService()
    end = time.time() + MINUTES * 60
    while time.time() < end:
        table = await defer.maybeDeferred(lambda: source.read())
        snap = ProcessSnapshot("measure", int(time.time() * 1000), table)
        rows_per_table.append((len(table.rows), table.total))
        for h in histories.values():
            h.offer(snap)
        await task.deferLater(reactor, 2.0, lambda: None)
    for h in histories.values():
        await h.flush()
    for dialect, h in histories.items():
        print(f"{dialect}: {h.written} tables, {h.bytes_written / h.written:.0f} data bytes per table")
    n = len(rows_per_table)
    print(
        f"rows per table avg {sum(r for r, _ in rows_per_table) / n:.0f}, processes on host avg {sum(t for _, t in rows_per_table) / n:.0f}"
    )
    for h in histories.values():
        await h.stopService()
    db = pymysql.connect(host="127.0.0.1", user="root", database=name)
    c = db.cursor()
    c.execute("ANALYZE TABLE process_snapshots")
    c.fetchall()
    c.execute("SELECT COUNT(*), SUM(LENGTH(data)) FROM process_snapshots")
    count, data = c.fetchone()
    c.execute(
        "SELECT data_length + index_length FROM information_schema.tables WHERE table_schema=%s AND table_name='process_snapshots'",
        (name,),
    )
    (mysql_bytes,) = c.fetchone()
    print(
        f"mysql: {count} rows, data {int(data) / count:.0f} B/row, table+index {mysql_bytes} B = {mysql_bytes / count:.0f} B/row"
    )
    con = sqlite3.connect(sqlite_path)
    try:
        r = con.execute("SELECT SUM(pgsize), COUNT(*) FROM dbstat WHERE name LIKE 'process_snapshots%'").fetchone()
        cnt = con.execute("SELECT COUNT(*) FROM process_snapshots").fetchone()[0]
        print(f"sqlite: {cnt} rows, table+indexes pages {r[0]} B = {r[0] / cnt:.0f} B/row")
    except sqlite3.OperationalError as e:
        print("sqlite dbstat unavailable", e)
    for store in stores.values():
        await store.stopService()


def run():
    d = defer.ensureDeferred(main())
    d.addErrback(lambda f: f.printTraceback())
    d.addBoth(lambda _: reactor.stop())


reactor.callWhenRunning(run)
reactor.run()
for child in children:
    child.kill()
    child.wait()
admin.cursor().execute(f"DROP DATABASE {name}")
os.remove(sqlite_path)
