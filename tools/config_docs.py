"""Regenerate the configuration reference in README.md and etc/dashd.ini
from dashd.settings.FIELDS (run after adding or changing a key):

    .venv/bin/python tools/config_docs.py
"""

from __future__ import annotations

import re
from pathlib import Path

from dashd.settings import FIELDS, KIB, MIB, Settings, format_duration

ROOT = Path(__file__).resolve().parent.parent
COMMENTED = {"db", "secret_file", "host_name", "metrics_token", "allowed_origins", "trusted_proxies", "tls_listen"}


def shown_default(name: str) -> str:
    value = getattr(Settings(), name)
    spec = next(f for f in FIELDS if f.name == name)
    if spec.parse.__name__ == "parse_duration":
        return format_duration(value) if value else "0"
    if spec.parse.__name__ == "parse_size":
        if value and value % MIB == 0:
            return f"{value // MIB}MiB"
        return f"{value // KIB}KiB" if value else "0"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ", ".join(value)
    return str(value)


def readme_table() -> str:
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for spec in FIELDS:
        default = "" if spec.name == "config" else shown_default(spec.name)
        rows.append(f"| `{spec.name}` | `{default}` | {spec.allowed} | {spec.help} |")
    return "\n".join(rows)


def ini_text() -> str:
    lines = [
        "# dashd example configuration. Every key is listed with its default.",
        "# Priority (lowest to highest): built-in defaults < this file (--config) <",
        "# DASHD_<KEY> environment variables < `twistd dashd --<key>` options.",
        "# Durations take ms/s/m/h/d suffixes (plain numbers are seconds); sizes take KiB/MiB.",
        "",
        "[dashd]",
    ]
    for spec in FIELDS:
        if spec.name == "config":
            continue
        default = shown_default(spec.name)
        lines.append(f"# {spec.help}. Allowed: {spec.allowed}.")
        if spec.name in COMMENTED:
            lines.append(f"# {spec.name} = {default}".rstrip())
        else:
            lines.append(f"{spec.name} = {default}")
        lines.append("")
    lines += [
        "# Alert rules: NAME = METRIC OP THRESHOLD [for DURATION] [level=info|warning|critical] [clear=N] [enabled=true|false]",
        "# OP is one of > >= < <=. `clear` is the hysteresis threshold the value must cross back over to resolve.",
        "# Rules here are loaded at start (overriding stored rules of the same name); admins edit them at run time",
        "# over the WebSocket (rule_set / rule_delete) and those edits are stored in the database.",
        "# With no [rules] section and no stored rules, dashd starts with these three built-in rules.",
        "[rules]",
        "cpu_high = cpu_usage > 90 for 60s level=warning clear=80",
        "memory_high = memory_usage > 90 for 60s level=warning clear=85",
        "disk_full = disk_usage > 95 for 60s level=critical clear=90",
        "",
        "# Alert delivery (docs/alerting.md): channels and routes. Rules may carry labels for routing and",
        "# silences: `label.team=db` on a rule line. Without a [route:...] every alert goes to every channel.",
        "# [channel:oncall-mail]",
        "# kind = email",
        "# host = smtp.example.com",
        "# security = starttls",
        "# username = alerts@example.com",
        "# password = secret",
        "# from = dashd@example.com",
        "# to = oncall@example.com",
        "#",
        "# [channel:team-slack]",
        "# kind = webhook",
        "# format = slack",
        "# url = https://hooks.slack.com/services/T000/B000/XXXX",
        "#",
        "# [route:pager]",
        "# match = severity=critical",
        "# channels = oncall-mail, team-slack",
        "# group_by = alertname, host",
        "# group_wait = 30s",
        "# repeat_interval = 4h",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = re.sub(r"\| key \| default \| allowed \| meaning \|\n(?:\|.*\|\n)+", readme_table() + "\n", text, count=1)
    readme.write_text(text)
    (ROOT / "etc" / "dashd.ini").write_text(ini_text())


if __name__ == "__main__":
    main()
