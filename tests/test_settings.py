"""Configuration: defaults < INI (--config) < DASHD_* < `twistd dashd`
options, value parsing, and one-line errors naming the key. Parsing tests
compare whole Settings objects, so a value leaking from the wrong source
shows up as a diff."""

from __future__ import annotations

import dataclasses
import os

import pytest

from dashd.settings import (
    DAY,
    FIELDS,
    HOUR,
    KIB,
    MIB,
    MINUTE,
    AlertRuleConfig,
    ConfigError,
    Settings,
    check_db_url,
    load_settings,
    parse_bool,
    parse_duration,
    parse_list,
    parse_size,
    redact_url,
)
from dashd.tap import Options


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch):
    """load_settings reads os.environ by default: start every test without DASHD_*."""
    for name in list(os.environ):
        if name.startswith("DASHD_"):
            monkeypatch.delenv(name)


@pytest.fixture
def write_ini(tmp_path):
    def write(text: str, name: str = "dashd.ini") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def assert_one_line_naming(error: ConfigError, key: str) -> None:
    text = str(error)
    assert error.key == key
    assert "\n" not in text
    assert key in text


# ----- the FIELDS table and the Settings dataclass


def test_every_field_is_a_settings_attribute_with_the_same_default():
    settings_fields = {f.name: f for f in dataclasses.fields(Settings)}
    assert {spec.name for spec in FIELDS} == set(settings_fields) - {"rules", "alert_channels", "alert_routes"}
    defaults = Settings()
    mismatched = {
        spec.name: (spec.default, getattr(defaults, spec.name))
        for spec in FIELDS
        if spec.default != getattr(defaults, spec.name)
    }
    assert mismatched == {}


def test_every_default_passes_its_own_check():
    failing = [spec.name for spec in FIELDS if not spec.check(spec.parse(spec.default))]
    assert failing == []


def test_no_sources_give_the_built_in_defaults():
    assert load_settings({}, environ={}) == Settings()


# ----- value parsers


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("100ms", 0.1),
        ("5s", 5.0),
        ("10m", 10 * MINUTE),
        ("24h", DAY),
        ("30d", 30 * DAY),
        ("2.5", 2.5),
        (" 3 s ", 3.0),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_durations_parse_with_units(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5 weeks", "-1s", "s", "1.2.3s", "ten"])
def test_malformed_durations_are_rejected(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    "text, size",
    [
        ("512", 512),
        ("2k", 2 * KIB),
        ("64KiB", 64 * KIB),
        ("1MiB", MIB),
        ("3mb", 3 * MIB),
        ("10 b", 10),
        (4096, 4096),
    ],
)
def test_sizes_parse_with_units(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "1GiB", "1.5k", "lots"])
def test_malformed_sizes_are_rejected(text):
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    "text, value",
    [
        ("1", True),
        ("true", True),
        ("Yes", True),
        ("ON", True),
        ("0", False),
        ("false", False),
        ("no", False),
        (" off ", False),
        (True, True),
    ],
)
def test_booleans_parse(text, value):
    assert parse_bool(text) is value


def test_a_non_boolean_word_is_rejected():
    with pytest.raises(ValueError):
        parse_bool("maybe")


def test_lists_split_on_commas_and_newlines_and_drop_blanks():
    assert parse_list("tcp:1, tcp:2\n tcp:3,,\n") == ("tcp:1", "tcp:2", "tcp:3")
    assert parse_list(["a ", "", " b"]) == ("a", "b")


# ----- precedence


def test_ini_overrides_defaults(write_ini):
    path = write_ini(
        "[dashd]\ninterval = 5s\nstate-dir = /var/lib/dashd\nlisten = tcp:9000, tcp:9001\n"
        "compression = off\nmax_message_size = 1MiB\n"
    )
    assert load_settings({"config": path}, environ={}) == Settings(
        config=path,
        interval=5.0,
        state_dir="/var/lib/dashd",
        listen=("tcp:9000", "tcp:9001"),
        compression=False,
        max_message_size=MIB,
    )


def test_environment_overrides_ini_and_options_override_environment(write_ini):
    path = write_ini("[dashd]\ninterval = 5\nstate_dir = from-ini\nlisten = tcp:9000\nhost_name = ini-host\n")
    environ = {
        "DASHD_CONFIG": path,
        "DASHD_INTERVAL": "3",
        "DASHD_STATE_DIR": "from-env",
        "DASHD_ALLOWED_ORIGINS": "https://a.example, https://b.example",
    }
    options = {"interval": "2", "listen": ["tcp:7000"]}
    assert load_settings(options, environ=environ) == Settings(
        config=path,
        interval=2.0,
        state_dir="from-env",
        listen=("tcp:7000",),
        host_name="ini-host",
        allowed_origins=("https://a.example", "https://b.example"),
    )


def test_empty_environment_values_and_none_options_are_ignored(write_ini):
    path = write_ini("[dashd]\ninterval = 5\n")
    environ = {"DASHD_INTERVAL": "", "DASHD_STATE_DIR": "from-env"}
    options = {"config": path, "interval": None, "state_dir": None, "listen": []}
    assert load_settings(options, environ=environ) == Settings(config=path, interval=5.0, state_dir="from-env")


def test_config_option_beats_config_environment_variable(write_ini):
    env_ini = write_ini("[dashd]\ninterval = 7\n", "env.ini")
    option_ini = write_ini("[dashd]\ninterval = 8\n", "option.ini")
    settings = load_settings({"config": option_ini}, environ={"DASHD_CONFIG": env_ini})
    assert settings == Settings(config=option_ini, interval=8.0)


def test_load_settings_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("DASHD_INTERVAL", "4")
    assert load_settings({}) == Settings(interval=4.0)


def test_rules_section_is_read_in_order(write_ini):
    path = write_ini(
        "[dashd]\n[rules]\ncpu_high = cpu_usage > 90 for 30s level=critical clear=85\nswap = swap_usage >= 50\n"
    )
    assert load_settings({"config": path}, environ={}).rules == (
        AlertRuleConfig("cpu_high", "cpu_usage > 90 for 30s level=critical clear=85"),
        AlertRuleConfig("swap", "swap_usage >= 50"),
    )


# ----- errors: one line naming the key


@pytest.mark.parametrize(
    "value, accepted",
    [
        ("0.1", True),
        ("100ms", True),
        ("60", True),
        ("1m", True),
        ("0.05", False),
        ("60.5", False),
        ("2m", False),
        ("0", False),
        ("fast", False),
    ],
)
def test_interval_is_allowed_from_a_tenth_of_a_second_to_a_minute(value, accepted):
    if accepted:
        assert 0.1 <= load_settings({"interval": value}, environ={}).interval <= 60
    else:
        with pytest.raises(ConfigError) as caught:
            load_settings({"interval": value}, environ={})
        assert_one_line_naming(caught.value, "interval")
        assert "0.1 to 60" in str(caught.value)


def test_bad_environment_value_names_the_key():
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={"DASHD_COMPRESSION": "perhaps"})
    assert_one_line_naming(caught.value, "compression")
    assert "true or false" in str(caught.value)


def test_unknown_ini_key_names_the_key_and_the_file(write_ini):
    path = write_ini("[dashd]\ninterval = 1\nintervall = 2\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"config": path}, environ={})
    assert_one_line_naming(caught.value, "intervall")
    assert path in str(caught.value)


def test_config_is_not_a_key_inside_the_ini(write_ini):
    path = write_ini("[dashd]\nconfig = other.ini\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"config": path}, environ={})
    assert_one_line_naming(caught.value, "config")


def test_unreadable_config_file_names_the_config_key(tmp_path):
    missing = str(tmp_path / "nope.ini")
    with pytest.raises(ConfigError) as caught:
        load_settings({"config": missing}, environ={})
    assert_one_line_naming(caught.value, "config")
    assert "cannot read" in str(caught.value)


def test_invalid_ini_syntax_is_one_line(write_ini):
    path = write_ini("[dashd]\ninterval = 1\ninterval = 2\n")
    with pytest.raises(ConfigError) as caught:
        load_settings({"config": path}, environ={})
    assert_one_line_naming(caught.value, "config")


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u@h/db",
        "sqlite:///",
        "mysql://host-without-db",
        "mysql://h:notaport/db",
        "mysql:///db",
    ],
)
def test_bad_database_url_names_the_db_key(url):
    with pytest.raises(ConfigError) as caught:
        load_settings({"db": url}, environ={})
    assert_one_line_naming(caught.value, "db")


def test_database_urls_are_understood():
    assert check_db_url("sqlite:///state/dashd.db").path == "state/dashd.db"
    mysql = check_db_url("mysql://dash:s%3Acret@db.example:3307/metrics")
    assert (mysql.dialect, mysql.host, mysql.port, mysql.user, mysql.password, mysql.database) == (
        "mysql",
        "db.example",
        3307,
        "dash",
        "s:cret",
        "metrics",
    )


def test_default_database_lives_in_the_state_dir():
    assert load_settings({"state_dir": "/srv/dashd"}, environ={}).db_url == "sqlite:////srv/dashd/dashd.db"


def test_rollup_retention_shorter_than_raw_retention_names_retention_rollup():
    with pytest.raises(ConfigError) as caught:
        load_settings({"retention_raw": "2d", "retention_rollup": "1d"}, environ={})
    assert_one_line_naming(caught.value, "retention_rollup")
    assert "retention_raw" in str(caught.value)


def test_rollup_retention_equal_to_raw_retention_is_accepted():
    settings = load_settings({"retention_raw": "2d", "retention_rollup": "48h"}, environ={})
    assert (settings.retention_raw, settings.retention_rollup) == (2 * DAY, 2 * DAY)


@pytest.mark.parametrize(
    "key, value",
    [
        ("listen", "8080"),
        ("log_format", "xml"),
        ("bus", "kafka://x"),
        ("host_name", "bad host"),
        ("max_frame_size", "512"),
        ("ring_span", "2h"),
        ("deflate_window_bits", "16"),
        ("store_queue", "many"),
    ],
)
def test_each_rejected_value_names_its_key(key, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({key: value}, environ={})
    assert_one_line_naming(caught.value, key)


# ----- redaction


@pytest.mark.parametrize(
    "url, redacted",
    [
        ("mysql://dash:secret@db:3306/metrics", "mysql://dash:***@db:3306/metrics"),
        ("mysql://dash:p@ss@db/metrics", "mysql://dash:***@db/metrics"),
        ("redis://:secret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("mysql://root@db/metrics", "mysql://root@db/metrics"),
        ("mysql://db:3306/metrics", "mysql://db:3306/metrics"),
        ("sqlite:///state/dashd.db", "sqlite:///state/dashd.db"),
    ],
)
def test_redact_url_hides_only_the_password(url, redacted):
    assert redact_url(url) == redacted


# ----- `twistd dashd` options


def parse_options(*argv: str) -> Settings:
    options = Options()
    options.parseOptions(list(argv))
    return options.settings


def test_no_options_give_the_defaults():
    assert parse_options() == Settings()


def test_listen_is_repeatable_and_appends():
    settings = parse_options(
        "--listen", "tcp:8080", "--listen", "systemd:domain=INET:index=0", "--tls-listen", "ssl:8443:privateKey=k.pem"
    )
    assert settings == Settings(
        listen=("tcp:8080", "systemd:domain=INET:index=0"), tls_listen=("ssl:8443:privateKey=k.pem",)
    )


def test_hyphenated_options_map_to_settings_keys():
    settings = parse_options("--state-dir", "/srv/dashd", "--max-rate-hz", "2.5", "--retention-raw", "12h")
    assert settings == Settings(state_dir="/srv/dashd", max_rate_hz=2.5, retention_raw=12 * HOUR)


def test_an_option_beats_the_environment_which_beats_the_ini(monkeypatch, write_ini):
    path = write_ini("[dashd]\ninterval = 5\nstate_dir = from-ini\nhost_name = ini-host\nlisten = tcp:9000\n")
    monkeypatch.setenv("DASHD_INTERVAL", "3")
    monkeypatch.setenv("DASHD_STATE_DIR", "from-env")
    settings = parse_options("--config", path, "--interval", "2", "--listen", "tcp:7000")
    assert settings == Settings(
        config=path, interval=2.0, state_dir="from-env", host_name="ini-host", listen=("tcp:7000",)
    )


def test_a_bad_option_exits_with_one_line_naming_the_key():
    """Not a UsageError: twistd would print its whole usage text before it."""
    with pytest.raises(SystemExit) as caught:
        parse_options("--interval", "120")
    message = str(caught.value.code)
    assert message.startswith("dashd: invalid configuration: interval")
    assert "\n" not in message
