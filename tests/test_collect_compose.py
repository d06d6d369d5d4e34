"""The documented compose service for watching the host from a container
(issue 19 item 6): host pid and network namespaces, the host's / mounted
read-only at /host, and an environment dashd's own loader accepts with
host_root pointing there."""

from __future__ import annotations

from dashd.settings import load_settings
from test_docker import compose


def test_dashd_host_service_shares_the_hosts_namespaces_and_mounts_it_read_only():
    service = compose({"DASHD_DB_PASSWORD": "pw"})["services"]["dashd-host"]
    assert (service["pid"], service["network_mode"]) == ("host", "host")
    assert "ports" not in service  # host networking publishes nothing
    assert "/:/host:ro,rslave" in service["volumes"]
    assert service["profiles"] == ["host"]  # `docker compose up` alone keeps running the bridged dashd


def test_dashd_host_environment_is_a_valid_configuration_reading_under_host():
    env = compose({"DASHD_DB_PASSWORD": "pw"})["services"]["dashd-host"]["environment"]
    settings = load_settings({}, environ={k: str(v) for k, v in env.items()})
    assert settings.host_root == "/host"
    assert settings.collectors == ("all",)
    assert settings.db_url.startswith("sqlite:///")  # host networking cannot reach the db service
