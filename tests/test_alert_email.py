"""E-mail delivery to a real SMTP server (aiosmtpd on loopback) with
STARTTLS and AUTH, and with implicit TLS: the recipients, the subject, the
plain-text and HTML parts and the dashboard link all arrive; the server's
certificate is verified (an untrusted one fails with the reason); a wrong
password fails with the server's answer."""

from __future__ import annotations

import email
import email.policy
import ssl

import pytest
import pytest_twisted
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from twisted.internet import reactor

from alert_receivers import free_port
from dashd.alerting.channels import parse_channel, transport_for
from dashd.alerting.netguard import NetworkGuard, parse_networks
from dashd.auth.devcert import write_self_signed
from test_alert_delivery import T0, sample_notice

LOOPBACK = parse_networks(["127.0.0.0/8", "::1/128"])


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "content": envelope.content,
                "login": session.auth_data.login if session.authenticated else None,
                "tls": session.ssl is not None,
            }
        )
        return "250 2.0.0 queued as dashd-test"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerts" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=auth_data)  # not handled: aiosmtpd answers 535


@pytest.fixture
def certificate(tmp_path):
    key, cert = write_self_signed(str(tmp_path / "tls"), "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


@pytest.fixture(params=["starttls", "tls"])
def smtp_server(request, certificate):
    context, cert = certificate
    mailbox = Mailbox()
    port = free_port()
    # aiosmtpd only knows STARTTLS as TLS for AUTH; with implicit TLS the
    # whole session is encrypted anyway.
    options = (
        {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        if request.param == "starttls"
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_required=True, **options
    )
    controller.start()
    yield {"mailbox": mailbox, "port": port, "security": request.param, "ca_file": cert}
    controller.stop()


def mail_channel(server, **changes):
    data = {
        "kind": "email",
        "host": "localhost",
        "port": str(server["port"]),
        "security": server["security"],
        "username": "alerts",
        "password": "s3cret",
        "from": "dashd@example.com",
        "to": "ops@example.com, oncall@example.com",
        "ca_file": server["ca_file"],
        "timeout": "10s",
    }
    data.update(changes)
    return parse_channel("mail", data)


@pytest_twisted.ensureDeferred
async def test_an_alert_email_arrives_with_both_parts_and_the_dashboard_link(smtp_server):
    transport = transport_for(mail_channel(smtp_server), NetworkGuard(reactor, LOOPBACK), lambda: T0)
    result = await transport.send(sample_notice().body)
    assert result.ok, result.detail
    assert result.detail.startswith("SMTP accepted 2 of 2 recipients: 250")
    [received] = smtp_server["mailbox"].messages
    assert received["from"] == "dashd@example.com"
    assert received["to"] == ["ops@example.com", "oncall@example.com"]
    assert received["login"] == b"alerts"
    assert received["tls"] or smtp_server["security"] == "tls"  # aiosmtpd marks STARTTLS sessions only
    message = email.message_from_bytes(received["content"], policy=email.policy.default)
    assert message["Subject"] == "dashd [FIRING:1] alertname=cpu_high"
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    link = "https://dash.example.com/?from=1764148800000&to=1764151500000"
    assert "FIRING cpu_high on web1 since 2025-11-26T10:00:00.000Z" in text and f"Dashboard: {link}" in text
    assert "RESOLVED cpu_high on web2 at 2025-11-26T09:59:00.000Z" in text
    assert f'<a href="{link.replace("&", "&amp;")}">Open the dashboard</a>' in html
    assert "cpu_usage &gt; 90" in html


@pytest_twisted.ensureDeferred
async def test_an_untrusted_certificate_is_refused(smtp_server, logged_failures):
    transport = transport_for(mail_channel(smtp_server, ca_file=""), NetworkGuard(reactor, LOOPBACK), lambda: T0)
    result = await transport.send(sample_notice().body)
    assert not result.ok and "certificate verify failed" in result.detail
    assert smtp_server["mailbox"].messages == []
    assert logged_failures == []


@pytest_twisted.ensureDeferred
async def test_a_wrong_password_fails_with_the_servers_answer(smtp_server, logged_failures):
    transport = transport_for(mail_channel(smtp_server, password="wrong"), NetworkGuard(reactor, LOOPBACK), lambda: T0)
    result = await transport.send(sample_notice().body)
    assert not result.ok and result.detail.startswith("SMTP: ") and "535" in result.detail
    assert "wrong" not in result.detail and "AUTH" not in result.detail  # no transcript (base64 credentials)
    assert result.detail.startswith("SMTP: 535 ")
    assert smtp_server["mailbox"].messages == []
    assert logged_failures == []
