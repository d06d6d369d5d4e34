"""The `dashd` command: administration beside the daemon. Every subcommand
reads the same configuration as `twistd dashd` (--config, DASHD_*, and the
options below), so a token minted here is accepted by a running daemon."""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import os
import sys
from typing import Any, Callable

from dashd import __version__
from dashd.settings import (
    FIELDS_BY_NAME,
    ConfigError,
    Settings,
    format_duration,
    load_settings,
    parse_duration,
    redact_url,
)

COMMON = ("config", "state_dir", "db", "secret_file")


def _add_common(parser: argparse.ArgumentParser) -> None:
    for name in COMMON:
        spec = FIELDS_BY_NAME[name]
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None, help=spec.help)


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings({name: getattr(args, name, None) for name in COMMON})


def _run_async(work: Callable[[Any], Any]) -> Any:
    """Run `work(reactor)` (a coroutine function) on a reactor, return its result."""
    from twisted.internet import task
    from twisted.internet.defer import Deferred

    outcome: dict[str, Any] = {}

    def main(reactor):
        async def go():
            try:
                outcome["value"] = await work(reactor)
            except Exception as e:  # re-raised below: task.react would print a traceback and exit 1
                outcome["error"] = e

        return Deferred.fromCoroutine(go())

    try:
        task.react(main)
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _with_store(settings: Settings, action: Callable) -> Any:
    from dashd.store.database import Store

    async def work(reactor):
        store = Store(settings.db_url, reactor)
        store.pool = store.dialect.connection_pool()
        store.pool.start()
        try:
            await store.ensure_schema()
            return await action(store)
        finally:
            store.pool.close()

    return _run_async(work)


def cmd_token(args: argparse.Namespace) -> int:
    """`dashd token [mint]`, `dashd token list`, `dashd token revoke ID`."""
    import uuid

    from dashd.auth.tokens import AGENT_SUBJECT_CHARS, TokenIssuer, load_or_create_secret
    from dashd.store.issued import IssuedToken, IssuedTokens, TokenNotFound
    from dashd.timefmt import now_ms

    settings = _settings(args)
    if args.action == "list":
        tokens = _with_store(settings, lambda store: IssuedTokens(store).list())
        now = now_ms()
        print("\n".join(token.line(now) for token in tokens) if tokens else "no tokens minted by `dashd token`")
        return 0
    if args.action == "revoke":
        if not args.token_id:
            raise SystemExit("dashd: token revoke needs the token's id (see `dashd token list`)")
        try:
            _with_store(settings, lambda store: IssuedTokens(store).revoke(args.token_id, now_ms()))
        except TokenNotFound as e:
            raise SystemExit(f"dashd: {e}") from None
        print(f"revoked {args.token_id}; a running daemon refuses it within 5 s")
        return 0
    try:
        ttl = parse_duration(args.ttl)
    except ValueError:
        raise ConfigError("ttl", args.ttl, "a duration such as 30m, 1h or 7d") from None
    longest = settings.token_max_ttl(args.role)
    if not 1 <= ttl <= longest:
        raise ConfigError(
            "ttl",
            args.ttl,
            f"a duration from 1s to {format_duration(longest)} for the {args.role} role (token_max_ttl_{args.role})",
        )
    subject = args.subject or f"token-{args.role}"
    if args.role == "agent" and not (len(subject) <= 128 and set(subject) <= AGENT_SUBJECT_CHARS):
        raise ConfigError("subject", subject, "an agent's host name: letters, digits, '.', '_' and '-'")
    token_id = uuid.uuid4().hex
    token, expires_at = TokenIssuer(load_or_create_secret(settings.secret_path)).mint(
        subject, args.role, ttl, token_id=token_id
    )
    issued = IssuedToken(token_id, subject, args.role, now_ms(), int(expires_at * 1000), None)
    _with_store(settings, lambda store: IssuedTokens(store).record(issued))
    print(token)
    print(f"token id {token_id} (revoke with: dashd token revoke {token_id})", file=sys.stderr)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from dashd.store.migrate_v1 import V1Migration

    settings = _settings(args)

    def report(progress) -> None:
        if progress.rollup_rows or progress.sample_rows:
            print(
                f"moving v1 rows into chunks: {progress.phase}, {progress.rollup_rows} 1-minute buckets and "
                f"{progress.sample_rows} samples done, {progress.chunks} chunks",
                flush=True,
            )

    async def move_v1_rows(store):
        return await V1Migration(store, batch_rows=args.batch_rows, report=report).run()

    _with_store(settings, move_v1_rows)
    print(f"database up to date: {redact_url(settings.db_url)}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from dashd.alerting.engine import rule_from_config
    from dashd.collect.collector import build_catalogue

    settings = _settings(args)
    import psutil

    names = tuple(i.name for i in build_catalogue(psutil.cpu_count() or 1))
    for rule in settings.rules:
        try:
            rule_from_config(rule, names)
        except ValueError as e:
            raise ConfigError(f"rules.{rule.name}", rule.spec, str(e).split(": ", 1)[-1]) from None
    from dashd.alerting.config import channels_from_settings, routes_from_settings

    channels = channels_from_settings(settings)  # ConfigError naming the [channel:NAME] section
    routes_from_settings(settings, {c.name for c in channels})
    print(
        f"configuration OK (db {redact_url(settings.db_url)}, listen {', '.join(settings.listen)}, "
        f"interval {settings.interval:g}s, {len(settings.rules)} rules)"
    )
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise SystemExit("dashd: the passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def cmd_user(args: argparse.Namespace) -> int:
    from dashd.auth.revocations import RevocationList
    from dashd.auth.tokens import TokenIssuer, load_or_create_secret
    from dashd.auth.users import UserDirectory, UserError

    settings = _settings(args)
    password = _read_password(args) if args.action in ("add", "passwd") else None

    async def action(store):
        users = UserDirectory(
            store,
            TokenIssuer(load_or_create_secret(settings.secret_path)),
            RevocationList(),
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
            clock=store.clock,
        )
        if args.action == "add":
            await users.add(args.name, args.role, password)
            return f"added {args.name} ({args.role})"
        if args.action == "list":
            rows = await users.list()
            return "\n".join(f"{u['name']}\t{u['role']}\t{'disabled' if u['disabled'] else 'active'}" for u in rows)
        if args.action == "passwd":
            await users.set_password(args.name, password)
            return f"password changed for {args.name}; their sessions were revoked"
        if args.action == "disable":
            await users.set_disabled(args.name, True)
            return f"disabled {args.name}"
        if args.action == "enable":
            await users.set_disabled(args.name, False)
            return f"enabled {args.name}"
        if args.action == "role":
            await users.set_role(args.name, args.role)
            return f"{args.name} is now {args.role}"
        raise AssertionError(args.action)

    try:
        message = _with_store(settings, action)
    except UserError as e:
        raise SystemExit(f"dashd: {e}") from None
    if message:
        print(message)
    return 0


def cmd_dev_cert(args: argparse.Namespace) -> int:
    from dashd.auth.devcert import write_self_signed

    # Like every subcommand it reads the daemon's configuration: by default
    # the pair goes under the state directory the daemon uses.
    out = args.out or os.path.join(_settings(args).state_dir, "tls")
    key_path, cert_path = write_self_signed(out, args.hostname)
    print(f"wrote {key_path} and {cert_path}")
    print(f"use: twistd dashd --tls-listen ssl:8443:privateKey={key_path}:certKey={cert_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dashd", description="dashd administration (the daemon runs as `twistd dashd`)"
    )
    parser.add_argument("--version", action="version", version=f"dashd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="mint an access token and print it; list or revoke minted tokens")
    token.add_argument(
        "action",
        nargs="?",
        choices=("mint", "list", "revoke"),
        default="mint",
        help="mint (default), list the minted tokens, or revoke one by id",
    )
    token.add_argument("token_id", nargs="?", default=None, help="the id to revoke (from `dashd token list`)")
    _add_common(token)
    token.add_argument("--role", choices=("viewer", "operator", "admin", "agent"), default="viewer")
    token.add_argument("--ttl", default="1h", help="lifetime, e.g. 30m, 1h, 7d (default 1h)")
    token.add_argument("--subject", default=None, help="name recorded in the token (default token-ROLE)")
    token.set_defaults(func=cmd_token)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    _add_common(migrate)
    migrate.add_argument(
        "--batch-rows", type=int, default=50_000, help="v1 rows moved per transaction (bounds memory; default 50000)"
    )
    migrate.set_defaults(func=cmd_migrate)

    check = commands.add_parser("check-config", help="validate the configuration and exit")
    _add_common(check)
    check.set_defaults(func=cmd_check_config)

    user = commands.add_parser("user", help="manage users (passwords are read from a prompt or stdin)")
    user_actions = user.add_subparsers(dest="action", required=True)
    for action, needs_role in (
        ("add", True),
        ("list", False),
        ("passwd", False),
        ("disable", False),
        ("enable", False),
        ("role", True),
    ):
        sub = user_actions.add_parser(action)
        _add_common(sub)
        if action != "list":
            sub.add_argument("name")
        if needs_role:
            sub.add_argument(
                "--role",
                choices=("viewer", "operator", "admin"),
                required=(action == "role"),
                default="viewer" if action == "add" else None,
            )
        sub.set_defaults(func=cmd_user)

    dev_cert = commands.add_parser("dev-cert", help="write a self-signed key and certificate for local TLS")
    _add_common(dev_cert)
    dev_cert.add_argument("--out", default=None, help="directory (default STATE_DIR/tls)")
    dev_cert.add_argument("--hostname", default="localhost")
    dev_cert.set_defaults(func=cmd_dev_cert)

    from dashd import agent

    agent_parser = commands.add_parser("agent", help="run only the collector and push its samples to a hub's /ingest")
    agent.configure_parser(agent_parser)
    agent_parser.set_defaults(func=agent.run)

    _add_development_tools(commands)

    return parser


DEVELOPMENT_COMMANDS = ("bench", "conformance-echo")
DEV_TOOLS_MISSING = (
    "dashd {command} is a development tool, not part of the daemon: install the development "
    "tools from a checkout of the repository (`make test-deps`, or `pip install ./tools`)"
)


def _add_development_tools(commands: Any) -> None:
    """`dashd bench` and `dashd conformance-echo` live in the development
    package (tools/dashd_dev), never in the daemon's wheel: dispatch to it
    when it is installed, else say how to get it."""
    bench_help = "load test dashd against a Node ws baseline (docs/benchmarks.md; development install)"
    echo_help = "TEST TOOL: dashd's WebSocket stack as an echo server for conformance suites (development install)"
    if not _development_tools_installed():
        # Listed in --help all the same; main() answers them before parsing.
        commands.add_parser("bench", help=bench_help)
        commands.add_parser("conformance-echo", help=echo_help)
        return
    from dashd_dev import conformance
    from dashd_dev.bench import cli as bench_cli

    bench_parser = commands.add_parser("bench", help=bench_help)
    bench_cli.configure_parser(bench_parser)
    bench_parser.set_defaults(func=bench_cli.dispatch)

    echo = commands.add_parser("conformance-echo", help=echo_help)
    _add_common(echo)
    conformance.add_arguments(echo)
    echo.set_defaults(func=lambda args: conformance.run(args, _settings(args)))


def _development_tools_installed() -> bool:
    return importlib.util.find_spec("dashd_dev") is not None


def _development_tool_missing(command: str) -> int:
    print(DEV_TOOLS_MISSING.format(command=command), file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DEVELOPMENT_COMMANDS and not _development_tools_installed():
        return _development_tool_missing(argv[0])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except ConfigError as e:
        print(f"dashd: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
