"""Issue 11 items 5 and 10 over real sockets and real databases: refresh
tokens rotate and a reused one revokes its session family; `dashd token`
caps lifetimes per role, records ids, and `dashd token revoke` is enforced
by a running daemon within its 5 s revocation poll."""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from twisted.internet.threads import deferToThread

from conftest import start_daemon
from httpclient import http
from test_twistd import BIN, run
from wsclient import connect


def admin_password(daemon) -> str:
    return open(os.path.join(daemon.settings.state_dir, "initial-admin-password")).read().strip()


def cookie_of(response) -> str | None:
    header = response.header("Set-Cookie")
    return header.split(";")[0] if header else None


async def login(daemon):
    response = await http(
        "POST", daemon.url("/api/login", "http"), json_body={"username": "admin", "password": admin_password(daemon)}
    )
    assert response.status == 200, response.body
    return response.json()["access_token"], cookie_of(response)


async def refresh(daemon, cookie):
    return await http("POST", daemon.url("/api/refresh", "http"), headers={"Cookie": cookie})


# ----- 5. refresh rotation and reuse detection


@pytest_twisted.ensureDeferred
async def test_refresh_rotates_and_a_reused_token_revokes_the_whole_session(make_settings, db_url):
    daemon = await start_daemon(make_settings(db=db_url))
    try:
        _, first = await login(daemon)
        second_reply = await refresh(daemon, first)
        second = cookie_of(second_reply)
        assert second_reply.status == 200 and second and second != first  # rotated
        third_reply = await refresh(daemon, second)
        third = cookie_of(third_reply)
        assert third_reply.status == 200 and third not in (first, second)
        client = await connect(daemon.url(), token=third_reply.json()["access_token"])
        assert (await client.recv())["type"] == "connection_ack"
        # The thief replays the first cookie (two rotations old): the family dies.
        stolen = await refresh(daemon, first)
        assert stolen.status == 401 and "already used" in stolen.json()["error"]["message"]
        assert (await client.closed())[0] == 4001  # the victim's socket too
        victim = await refresh(daemon, third)
        assert victim.status == 401
    finally:
        await daemon.stop()


@pytest_twisted.ensureDeferred
async def test_two_tabs_refreshing_together_do_not_revoke_the_session(make_settings):
    daemon = await start_daemon(make_settings())
    try:
        _, first = await login(daemon)
        winner = await refresh(daemon, first)
        late_tab = await refresh(daemon, first)  # same moment, the old cookie: within the grace
        assert late_tab.status == 200 and late_tab.json()["access_token"]
        assert late_tab.header("Set-Cookie") is None  # no refresh token for it
        assert (await refresh(daemon, cookie_of(winner))).status == 200
    finally:
        await daemon.stop()


# ----- 10. `dashd token`: lifetimes capped, ids recorded, revocation


def dashd(state: str, *args: str, env: dict | None = None):
    return run(str(BIN / "dashd"), "token", *args, "--state-dir", state, env=env)


def test_token_lifetimes_are_capped_per_role(tmp_path):
    state = str(tmp_path / "state")
    too_long = dashd(state, "--role", "admin", "--ttl", "366d")
    assert too_long.returncode == 2 and "token_max_ttl_admin" in too_long.stderr
    assert dashd(state, "--role", "admin", "--ttl", "2d").returncode == 2  # admin: 1 day by default
    assert dashd(state, "--role", "admin", "--ttl", "12h").returncode == 0
    raised = dashd(state, "--role", "admin", "--ttl", "2d", env={"DASHD_TOKEN_MAX_TTL_ADMIN": "7d"})
    assert raised.returncode == 0, raised.stderr
    bad_agent = dashd(state, "--role", "agent", "--subject", "host\nforged")
    assert bad_agent.returncode == 2 and "host name" in bad_agent.stderr


@pytest_twisted.ensureDeferred
async def test_revoked_cli_tokens_are_refused_and_their_sockets_closed(make_settings):
    daemon = await start_daemon(make_settings())
    state = daemon.settings.state_dir
    try:
        minted = await deferToThread(dashd, state, "--role", "viewer", "--ttl", "1h")
        agent_minted = await deferToThread(dashd, state, "--role", "agent", "--subject", "agent-r", "--ttl", "1h")
        assert minted.returncode == 0 and agent_minted.returncode == 0, minted.stderr
        token, agent_token = minted.stdout.strip(), agent_minted.stdout.strip()
        listing = await deferToThread(dashd, state, "list")
        lines = [line.split("\t") for line in listing.stdout.strip().splitlines()]
        assert [(line[1], line[2], line[5]) for line in lines] == [
            ("token-viewer", "viewer", "active"),
            ("agent-r", "agent", "active"),
        ]
        token_id, agent_id = lines[0][0], lines[1][0]
        assert token_id in minted.stderr
        viewer = await connect(daemon.url(), token=token)
        assert (await viewer.recv())["type"] == "connection_ack"
        agent = await connect(daemon.url("/ingest"), token=agent_token)
        assert (await agent.recv())["type"] == "connection_ack"
        for revoked_id in (token_id, agent_id):
            result = await deferToThread(dashd, state, "revoke", revoked_id)
            assert result.returncode == 0, result.stderr
        # Within the daemon's revocation poll (5 s): both sockets closed.
        assert (await viewer.closed(timeout=12))[0] == 4001
        assert (await agent.closed(timeout=12))[0] == 4001
        again = await connect(daemon.url(), token=token)
        assert (await again.closed())[0] == 4001
        response = await http("GET", daemon.url("/api/me", "http"), headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401
        twice = await deferToThread(dashd, state, "revoke", token_id)
        assert twice.returncode != 0 and "no active token" in twice.stderr
        listing = await deferToThread(dashd, state, "list")
        assert listing.stdout.count("\trevoked") == 2
    finally:
        await daemon.stop()


def test_revoking_an_unknown_id_fails_clearly(tmp_path):
    result = dashd(str(tmp_path / "state"), "revoke", "0" * 32)
    assert result.returncode == 1 and "no active token" in result.stderr
    assert dashd(str(tmp_path / "state"), "revoke").returncode == 1


@pytest.mark.parametrize("role", ["viewer", "operator", "admin", "agent"])
def test_each_role_has_its_own_cap(tmp_path, role):
    from dashd.settings import load_settings

    settings = load_settings({}, environ={})
    assert settings.token_max_ttl(role) == {"viewer": 30, "operator": 7, "admin": 1, "agent": 366}[role] * 86400
