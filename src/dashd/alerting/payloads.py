"""Rendering a notice (dashd's generic payload) into each receiver's format:
the generic JSON itself, Slack, Mattermost, Discord, Microsoft Teams
(Adaptive Card), Alertmanager v2 alerts, and an e-mail (subject, text and
HTML parts). Pure functions: the same notice always gives the same bytes,
which the tests compare with recorded examples of each documented format."""

from __future__ import annotations

import html
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Callable

import orjson

from dashd.timefmt import iso_ms

WEBHOOK_FORMATS = ("generic", "slack", "mattermost", "discord", "teams")
DISCORD_CONTENT_MAX = 2000
DISCORD_DESCRIPTION_MAX = 4096
COLOR = {"critical": 0xD32F2F, "warning": 0xF9A825, "info": 0x1976D2, "resolved": 0x2E7D32}


def title(body: dict[str, Any]) -> str:
    """`[FIRING:2] cpu_high host=web1` in Alertmanager's manner."""
    counts = body["counts"]
    status = body["status"].upper()
    count = counts["firing"] if body["status"] == "firing" else counts["resolved"]
    labels = " ".join(f"{k}={v}" for k, v in sorted(body["groupLabels"].items()))
    prefix = "[TEST] " if body.get("kind") == "test" else ""
    return f"{prefix}[{status}:{count}] {labels}".rstrip()


def _severity(body: dict[str, Any]) -> str:
    if body["status"] == "resolved":
        return "resolved"
    levels = [a["labels"].get("severity", "info") for a in body["alerts"] if a["status"] == "firing"]
    for level in ("critical", "warning"):
        if level in levels:
            return level
    return "info"


def alert_lines(body: dict[str, Any]) -> list[str]:
    lines = []
    for alert in body["alerts"]:
        resolved = alert["status"] == "resolved" and alert["endsAt"]
        when = f"at {iso_ms(alert['endsAt'])}" if resolved else f"since {iso_ms(alert['startsAt'])}"
        lines.append(
            f"{alert['status'].upper()} {alert['labels'].get('alertname', '?')} on "
            f"{alert['labels'].get('host', '?')} {when}: {alert['annotations']['description']}"
        )
    if body["truncatedAlerts"]:
        lines.append(f"... and {body['truncatedAlerts']} more")
    return lines


def _dumps(payload: object) -> bytes:
    return orjson.dumps(payload)


def render_generic(body: dict[str, Any]) -> bytes:
    return _dumps(body)


def render_slack(body: dict[str, Any]) -> bytes:
    """Slack incoming webhook: `text` (the notification fallback) and blocks."""
    items = "\n".join(f"• {_slack_escape(line)}" for line in alert_lines(body))
    return _dumps(
        {
            "text": _slack_escape(title(body)),
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": title(body)[:150]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": items[:3000]}},
                {"type": "section", "text": {"type": "mrkdwn", "text": f"<{body['dashboardURL']}|Open the dashboard>"}},
            ],
        }
    )


def _slack_escape(text: str) -> str:
    """Slack's mrkdwn reserves &, < and > (its link syntax)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_mattermost(body: dict[str, Any]) -> bytes:
    """Mattermost incoming webhook: Markdown `text`, a `username`."""
    items = "\n".join(f"- {line}" for line in alert_lines(body))
    return _dumps(
        {
            "username": "dashd",
            "text": f"#### {title(body)}\n{items}\n[Open the dashboard]({body['dashboardURL']})",
        }
    )


def render_discord(body: dict[str, Any]) -> bytes:
    """Discord webhook: `content` plus one embed (limits 2000 and 4096)."""
    description = "\n".join(alert_lines(body))
    return _dumps(
        {
            "username": "dashd",
            "content": title(body)[:DISCORD_CONTENT_MAX],
            "embeds": [
                {
                    "title": title(body)[:256],
                    "description": description[:DISCORD_DESCRIPTION_MAX],
                    "url": body["dashboardURL"],
                    "color": COLOR[_severity(body)],
                }
            ],
        }
    )


def render_teams(body: dict[str, Any]) -> bytes:
    """Microsoft Teams (Workflows / incoming webhook): a message carrying an
    Adaptive Card 1.4."""
    facts = [
        {"title": a["labels"].get("host", "?"), "value": line} for a, line in zip(body["alerts"], alert_lines(body))
    ]
    return _dumps(
        {
            "type": "message",
            "attachments": [
                {
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": None,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {
                                "type": "TextBlock",
                                "size": "Medium",
                                "weight": "Bolder",
                                "text": title(body),
                                "wrap": True,
                                "color": "Good" if body["status"] == "resolved" else "Attention",
                            },
                            {"type": "FactSet", "facts": facts},
                        ],
                        "actions": [
                            {"type": "Action.OpenUrl", "title": "Open the dashboard", "url": body["dashboardURL"]}
                        ],
                    },
                }
            ],
        }
    )


WEBHOOK_RENDERERS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "generic": render_generic,
    "slack": render_slack,
    "mattermost": render_mattermost,
    "discord": render_discord,
    "teams": render_teams,
}


def render_alertmanager(body: dict[str, Any], now_ms: int, resend_ms: int) -> bytes:
    """Alertmanager v2 `POST /api/v2/alerts`: a list of postable alerts.
    A firing alert gets `endsAt` a few resend periods ahead (as Prometheus
    does), so it expires by itself if dashd stops re-posting it; a resolved
    one gets the time it resolved."""
    alerts = []
    for alert in body["alerts"]:
        ends = alert["endsAt"] if alert["status"] == "resolved" and alert["endsAt"] else now_ms + 4 * resend_ms
        alerts.append(
            {
                "labels": alert["labels"],
                "annotations": alert["annotations"],
                "startsAt": iso_ms(alert["startsAt"]),
                "endsAt": iso_ms(ends),
                "generatorURL": alert["dashboardURL"],
            }
        )
    return _dumps(alerts)


def render_email(body: dict[str, Any], sender: str, recipients: tuple[str, ...], now_ms: int) -> bytes:
    """multipart/alternative: a plain-text part and an HTML part, both with
    the link to the dashboard at the alerts' time range."""
    message = EmailMessage()
    message["Subject"] = "dashd " + title(body)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(now_ms / 1000, usegmt=True)
    message["Message-ID"] = make_msgid("dashd")
    lines = alert_lines(body)
    link = body["dashboardURL"]
    message.set_content("\n".join([title(body), "", *lines, "", f"Dashboard: {link}", ""]))
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    message.add_alternative(
        f"<!doctype html><html><body><h2>{html.escape(title(body))}</h2><ul>{items}</ul>"
        f'<p><a href="{html.escape(link, quote=True)}">Open the dashboard</a></p></body></html>',
        subtype="html",
    )
    return message.as_bytes()
