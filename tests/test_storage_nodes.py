"""Nodes sharing one database (Redis scale-out): each node's write-ahead
head rows carry its node id, so a seal deletes only its own rows, a restart
reads back only its own rows, and every read also serves the other nodes'
open samples, each sample exactly once."""

from __future__ import annotations

import os

import pytest_twisted

from dashd.store.node import load_or_create_node_id
from test_store import (  # noqa: F401  (open_store is a fixture)
    MINUTE_MS,
    SECOND_MS,
    T0_MS,
    open_store,
    query,
    sample,
    stored_rows,
)

START = T0_MS - MINUTE_MS


def _record(store, host: str, seqs: range) -> list[int]:
    times = []
    for seq in seqs:
        times.append(START + seq * SECOND_MS)
        store.record(sample(seq, times[-1], host=host, cpu=float(seq)))
    return times


async def _counts(store, host: str) -> tuple[int, int]:
    history = await store.history(host, ["cpu"], START, T0_MS, 1000, SECOND_MS)
    stats = await store.stats(host, ["cpu"], START, T0_MS)
    return sum(p["count"] for p in history.series["cpu"]), stats["cpu"]["count"]


@pytest_twisted.ensureDeferred
async def test_a_seal_deletes_only_its_own_head_rows_and_reads_serve_the_other_nodes_open_samples(open_store, db_url):
    a = (await open_store(node_id="node-a")).store
    b = (await open_store(node_id="node-b")).store
    times_a = _record(a, "host-a", range(1, 4))
    times_b = _record(b, "host-b", range(4, 7))
    await a.flush()
    await b.flush()
    assert sorted(r[0] for r in await query(db_url, "SELECT owner FROM chunk_head")) == ["node-a", "node-b"]

    await b._seal(everything=True)  # B's open chunks go to `chunks`; A's head rows stay
    assert [r[0] for r in await query(db_url, "SELECT owner FROM chunk_head")] == ["node-a"]

    # B serves A's open samples (only in A's memory and head rows), once each.
    assert await _counts(b, "host-a") == (3, 3)
    assert await b.sample_times("host-a", START, T0_MS) == set(times_a)
    assert [m.seq for m in await b.read_stream(1, 6)] == [1, 2, 3, 4, 5, 6]
    # A serves B's sealed samples, and its own from memory (not twice from its head).
    assert await _counts(a, "host-b") == (3, 3)
    assert await _counts(a, "host-a") == (3, 3)
    assert await a.sample_times("host-b", START, T0_MS) == set(times_b)

    await a._seal(everything=True)
    assert await _counts(b, "host-a") == (3, 3)  # now from `chunks`, still once
    assert len(await stored_rows(db_url)) == 6


@pytest_twisted.ensureDeferred
async def test_a_restarted_node_reads_back_only_its_own_head_rows(open_store, db_url):
    a = (await open_store(node_id="node-a")).store
    b = (await open_store(node_id="node-b")).store
    _record(a, "host-a", range(1, 4))
    _record(b, "host-b", range(4, 8))
    await a.flush()
    await b.flush()
    # A is killed (-9) and starts again with the same node id: it adopts
    # its own three open samples and none of B's.
    again = (await open_store(node_id="node-a")).store
    recovered = again._memory(None).raw
    assert sorted(int(s) for parts in recovered.values() for c in parts for s in c.seq) == [1, 2, 3]
    assert {again.registry.info(series_id).host for series_id in recovered} == {"host-a"}


def test_the_node_id_is_made_once_and_kept_in_the_state_directory(tmp_path):
    path = str(tmp_path / "node.id")
    first = load_or_create_node_id(path)
    assert len(first) == 24 and os.path.exists(path)
    assert load_or_create_node_id(path) == first
    assert load_or_create_node_id(str(tmp_path / "other.id")) != first
