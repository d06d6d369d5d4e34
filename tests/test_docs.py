"""The docs keep up with the code: every configuration key is documented in
the README and etc/dashd.ini, every message type, error code and close code
in docs/protocol.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dashd.clients.router import REQUESTS
from dashd.errors import ERROR_CODES
from dashd.settings import FIELDS, load_settings, read_ini

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
INI = ROOT / "etc" / "dashd.ini"


@pytest.mark.parametrize("key", [f.name for f in FIELDS])
def test_every_key_is_in_the_readme_table_and_the_example_ini(key):
    assert f"| `{key}` |" in README
    if key != "config":
        assert re.search(rf"^#? ?{key} =", INI.read_text(), re.M), key


def test_the_example_ini_loads_as_it_is():
    values, rules = read_ini(str(INI))
    settings = load_settings({"config": str(INI)}, environ={})
    assert settings.listen == ("tcp:8080",) and len(rules) == 3


@pytest.mark.parametrize(
    "name",
    sorted(REQUESTS)
    + list(ERROR_CODES)
    + [
        "connection_ack",
        "metrics_update",
        "notification",
        "notification_ack",
        "pong",
        "stream_degraded",
        "resume_gap",
        "token_expiring",
    ],
)
def test_every_type_and_error_code_is_in_the_protocol_doc(name):
    assert f"`{name}`" in PROTOCOL


@pytest.mark.parametrize("code", ["1000", "1001", "1003", "1007", "1008", "1009", "1011", "1013", "4001", "4002"])
def test_every_close_code_is_in_the_protocol_doc(code):
    assert f"| {code} |" in PROTOCOL
