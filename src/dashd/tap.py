"""`twistd dashd`: command-line options and the service tree.

Only makeService reads the options; everything below it takes a Settings
object or plain arguments."""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Callable

import psutil
import txaio
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.internet.endpoints import SSL4ServerEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IReactorTime, IStreamServerEndpoint
from twisted.internet.ssl import Certificate, KeyPair
from twisted.internet.task import LoopingCall, deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import ILogObserver, Logger
from twisted.python import usage
from twisted.python.components import Componentized
from zope.interface import implementer

from dashd import __version__
from dashd.alerting.config import build_alert_delivery
from dashd.alerting.engine import DEFAULT_RULES, NotificationCenter, RuleEngine, deferred_load_rules, rule_from_config
from dashd.auth.audit import AuditLog
from dashd.auth.handshake import TokenVerifier
from dashd.auth.revocations import RevocationList
from dashd.auth.tokens import TokenIssuer, load_or_create_secret
from dashd.auth.users import UserDirectory
from dashd.clients.connections import ConnectionManager
from dashd.clients.history import HistoryQueries
from dashd.clients.ingest import AgentLimits, IngestService, StoredTimestamps
from dashd.clients.processes import ProcessRequests
from dashd.clients.queries import QueryScheduler
from dashd.clients.seams import MetricCatalogue, RouterContext, SessionContext
from dashd.clients.session import SessionFactory
from dashd.collect.assembly import build_scheduler, enabled_collectors
from dashd.collect.collector import CollectorService, MetricsCollector, PsutilReader, build_catalogue
from dashd.collect.families import COLLECTOR_FAMILIES, describe_series
from dashd.collect.hostroot import host_paths, point_psutil_at
from dashd.collect.series_feed import SeriesFolding
from dashd.collect.sources import PROCESSES_TOPIC
from dashd.errors import CLOSE_GOING_AWAY
from dashd.ops.logs import observer_for_twistd
from dashd.ops.private import private_directory
from dashd.ops.rlimits import raise_open_files_limit
from dashd.ops.sdnotify import SystemdNotifier, WatchdogService
from dashd.ops.series_export import SeriesExposition
from dashd.ops.shutdown import ShutdownHooks
from dashd.ops.signals import StopSignals
from dashd.ops.telemetry import Telemetry
from dashd.settings import FIELDS, ConfigError, Settings, load_settings, redact_url
from dashd.store.audit import AuditRecords
from dashd.store.database import Store, StoreUnavailable
from dashd.store.node import load_or_create_node_id
from dashd.store.processes import ProcessHistory
from dashd.store.reads import NotificationReads
from dashd.stream.bus import METRICS_TOPIC, InMemoryBus
from dashd.stream.hub import SequenceFile, StreamHub
from dashd.stream.processes import ProcessStream, TopicRouter
from dashd.timefmt import now_ms
from dashd.wire.broadcast import FlatWriter
from dashd.wire.httpguard import FD_HEADROOM, ConnectionGate, GuardedSite
from dashd.wire.tls import server_tls_options
from dashd.wire.web import RedirectToTLS, WebContext, build_site, front_door

log = Logger()

SHUTDOWN_CLOSE_WAIT = 3.0
STARTUP_RETRY = 5.0
REVOCATION_POLL = 5.0


class Options(usage.Options):
    """Every settings key is an option (--listen and --tls-listen repeat)."""

    synopsis = "[options]"
    longdesc = (
        "dashd samples this host with psutil and streams live metrics and notifications over "
        "WebSockets. Options override DASHD_* environment variables, which override the INI file "
        "given with --config. See etc/dashd.ini for every key."
    )
    optParameters = [
        [spec.name.replace("_", "-"), None, None, f"{spec.help} [{spec.allowed}]"]
        for spec in FIELDS
        if not spec.repeatable
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["tls_listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """Endpoint to serve HTTP/WebSocket on, e.g. tcp:8080 (repeatable; default tcp:8080)."""
        self["listen"].append(endpoint)

    def opt_tls_listen(self, endpoint: str) -> None:
        """HTTPS/WSS endpoint, e.g. ssl:8443:privateKey=key.pem:certKey=cert.pem (repeatable)."""
        self["tls_listen"].append(endpoint)

    opt_tls_listen.__name__ = "tls-listen"

    def opt_version(self) -> None:
        print(f"dashd {__version__}")
        sys.exit(0)

    def postOptions(self) -> None:
        values = {key.replace("-", "_"): value for key, value in self.items()}
        if values.get("metrics_token"):
            # Arguments are visible to every local user (ps, /proc/PID/cmdline).
            log.warn(
                "--metrics-token on the command line is visible in `ps`; use metrics_token_file, "
                "DASHD_METRICS_TOKEN or the INI file instead"
            )
        try:
            self.settings = load_settings(values)
        except ConfigError as e:
            # One clear line and exit status 1, not the whole usage text.
            raise SystemExit(f"dashd: {e}") from None
        if self.settings.metrics_token_file:
            from dashd.ops.private import warn_if_shared

            warn_if_shared(self.settings.metrics_token_file, "metrics_token_file")


@implementer(IStreamServerEndpoint)
class _ReportingEndpoint:
    """Wraps an endpoint to learn the port it listened on (Twisted's
    StreamServerEndpointService keeps it to itself)."""

    def __init__(self, endpoint: Any, listened: Any) -> None:
        self._endpoint = endpoint
        self._listened = listened

    def listen(self, factory: Any) -> defer.Deferred:
        return self._endpoint.listen(factory).addCallback(self._listened)


class EndpointListener(StreamServerEndpointService):
    """Twisted's endpoint service, plus what dashd needs of it: the bound
    port (`port`, `ready`) for tests and the start-up log line, and a port in
    use reported as one line at start-up instead of a traceback."""

    # As strports.service sets it: listening errors raise at start-up.
    _raiseSynchronously = True

    def __init__(self, endpoint: Any, factory: Any, description: str) -> None:
        super().__init__(_ReportingEndpoint(endpoint, self._listened), factory)
        self.description = description
        self.port: IListeningPort | None = None
        self.ready: defer.Deferred = defer.Deferred()

    def privilegedStartService(self) -> None:
        try:
            super().privilegedStartService()
        except CannotListenError as error:
            # A port in use is an operator's everyday mistake (`make run`
            # twice): one line and exit status 1.
            reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
            raise SystemExit(f"dashd: cannot listen on {self.description}: {reason}") from None

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        address = port.getHost()
        log.info(
            "listening on {endpoint} ({host}:{port})",
            endpoint=self.description,
            host=getattr(address, "host", "?"),
            port=getattr(address, "port", "?"),
        )
        self.ready.callback(port)
        return port

    def stopService(self) -> defer.Deferred:
        self.port = None
        return super().stopService()


def tls_endpoint(reactor: Any, description: str) -> tuple[SSL4ServerEndpoint, int]:
    """`ssl:PORT:privateKey=KEY:certKey=CERT[:interface=ADDR][:extraCertChain=CHAIN]`
    with TLS 1.2 as the minimum version (Twisted's own parser cannot set it);
    the endpoint and its port number."""
    parts = re.split(r"(?<!\\):", description)
    if len(parts) < 2 or parts[0] != "ssl":
        raise ConfigError("tls_listen", description, "ssl:PORT:privateKey=KEY:certKey=CERT[:interface=ADDR]")
    try:
        port = int(parts[1])
    except ValueError:
        raise ConfigError("tls_listen", description, "the port must be a number") from None
    options = {}
    for part in parts[2:]:
        key, _, value = part.partition("=")
        options[key] = value.replace("\\:", ":")
    key_path = options.get("privateKey")
    cert_path = options.get("certKey", key_path)
    if not key_path:
        raise ConfigError("tls_listen", description, "privateKey=PATH is required")
    try:
        with open(key_path, "rb") as f:
            key = KeyPair.load(f.read(), 1)  # FILETYPE_PEM
        with open(cert_path, "rb") as f:
            cert_pem = f.read()
        certificate = Certificate.loadPEM(cert_pem)
        chain = []
        if options.get("extraCertChain"):
            with open(options["extraCertChain"], "rb") as f:
                chain = [Certificate.loadPEM(c).original for c in _pem_blocks(f.read())]
    except (OSError, ValueError, Exception) as e:
        raise ConfigError("tls_listen", description, f"cannot load the key/certificate ({e})") from None
    context = server_tls_options(key.original, certificate.original, chain)  # TLS 1.2+, ECDHE+AEAD
    return SSL4ServerEndpoint(reactor, port, context, interface=options.get("interface", "")), port


def _pem_blocks(data: bytes) -> list[bytes]:
    return re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.S)


class DashdService(MultiService):
    """The root: starts store, hub, collector, listeners in that order and
    stops them in a deliberate order so nothing is lost: stop accepting,
    close clients with 1001, stop sampling, flush the store.

    Its attributes name the parts it owns (tests and tools read them); no
    part is handed this object."""

    def __init__(
        self,
        settings: Settings,
        clock: IReactorTime,
        *,
        store: Store,
        hub: StreamHub,
        collector: CollectorService,
        users: UserDirectory,
        rules: RuleEngine,
        configured_rules: tuple,
        connections: ConnectionManager,
        bus: Any,
        queries: QueryScheduler,
        shutdown: ShutdownHooks,
        alerting: Service | None = None,
        bus_service: Service | None = None,
        notifier: SystemdNotifier | None = None,
        log_observer: ILogObserver | None = None,
        wall_clock_ms: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.store = store
        self.hub = hub
        self.collector = collector
        self.users = users
        self.rules = rules
        self.configured_rules = configured_rules
        self.connections = connections
        self.bus = bus
        self.queries = queries
        self.shutdown = shutdown
        self.alerting = alerting  # alert delivery (dashd.alerting.delivery), started once prepared
        self.bus_service = bus_service  # the Redis bus, when configured
        # systemd notifications (Type=notify, watchdog) and the observer
        # twistd logs to for log_format = json.
        self.notifier = notifier
        self.log_observer = log_observer
        self.wall_clock_ms = wall_clock_ms
        self.listeners: list[EndpointListener] = []
        self.prepared: defer.Deferred = defer.Deferred()
        self._watchdog: WatchdogService | None = None
        self._revocation_poll: LoopingCall | None = None
        for child in (store, hub, collector):
            child.setServiceParent(self)
        if bus_service is not None:
            bus_service.setServiceParent(self)

    def setServiceParent(self, parent) -> None:
        # twistd starts logging to the application's ILogObserver component
        # when it has one (and no --logger was given): the documented way for
        # an application to choose its log format.
        if self.log_observer is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.log_observer)
        super().setServiceParent(parent)

    def add_listener(self, listener: EndpointListener) -> None:
        self.listeners.append(listener)
        listener.setServiceParent(self)

    def is_prepared(self) -> bool:
        """The store answered and users, revocations and rules are loaded."""
        return self.prepared.called

    def startService(self) -> None:
        super().startService()
        defer.Deferred.fromCoroutine(self._prepare()).addErrback(lambda f: log.failure("start-up failed", f))
        if self.notifier is not None and self.notifier.enabled:
            self._watchdog = WatchdogService(self.notifier, self.clock, self.collector_ticking)
            self._watchdog.startService()
            self.prepared.addCallback(self._notify_ready)

    def _notify_ready(self, result: Any) -> Any:
        if self.running and self.notifier is not None:
            endpoints = ", ".join(listener.description for listener in self.listeners)
            self.notifier.ready(f"dashd {__version__} serving on {endpoints}")
        return result

    def collector_ticking(self) -> bool:
        """The watchdog's health check: CollectorService.is_ticking, now."""
        return self.collector.is_ticking(self.clock.seconds())

    async def _prepare(self) -> None:
        """Once the store answers: first-start admin, revocations, rules."""
        warned = False  # one line per outage; the store logs when it is back
        while self.running:
            try:
                await self.store.ensure_schema()
                await self.users.ensure_initial_admin(self.settings.state_dir)
                await self.users.load_revocations()
                await deferred_load_rules(self.rules, self.store, self.configured_rules)
                break
            except StoreUnavailable as e:
                if not warned:
                    warned = True
                    log.warn(
                        "store not ready ({error}); start-up retries every {delay:g}s",
                        error=str(e).splitlines()[0] if str(e) else "no detail",
                        delay=STARTUP_RETRY,
                    )
                await _sleep(self.clock, STARTUP_RETRY)
        if not self.running:
            return
        self._revocation_poll = LoopingCall(self._poll_revocations)
        self._revocation_poll.clock = self.clock
        self._revocation_poll.start(REVOCATION_POLL, now=False).addErrback(
            lambda f: log.failure("revocation poll stopped", f)
        )
        if self.alerting is not None:
            self.alerting.startService()
        if not self.prepared.called:
            self.prepared.callback(None)

    def _poll_revocations(self) -> defer.Deferred:
        d = defer.Deferred.fromCoroutine(self.users.load_revocations())
        d.addErrback(lambda f: f.trap(StoreUnavailable))
        d.addErrback(lambda f: log.failure("checking revocations failed", f))
        return d

    def stopService(self) -> defer.Deferred:
        return defer.Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        Service.stopService(self)
        if self.notifier is not None and self.notifier.enabled:
            self.notifier.stopping()
        if self._watchdog is not None:
            self._watchdog.stopService()
        poll = self._revocation_poll
        if poll is not None and poll.running:
            poll.stop()
        for listener in self.listeners:
            await defer.maybeDeferred(listener.stopService)
        self.shutdown.run()
        await self.close_clients(CLOSE_GOING_AWAY, "server shutting down")
        await defer.maybeDeferred(self.collector.stopService)
        await defer.maybeDeferred(self.hub.stopService)
        if self.alerting is not None and self.alerting.running:
            await defer.maybeDeferred(self.alerting.stopService)
        if self.bus_service is not None:
            await defer.maybeDeferred(self.bus_service.stopService)
        await defer.maybeDeferred(self.store.stopService)
        log.info("dashd stopped")

    async def close_clients(self, code: int, reason: str) -> None:
        sessions = list(self.connections)
        for session in sessions:
            session.close(code, reason)
        waited = 0.0
        while len(self.connections) and waited < SHUTDOWN_CLOSE_WAIT:
            await _sleep(self.clock, 0.05)
            waited += 0.05
        for session in list(self.connections):
            session.sink.dropConnection(abort=True)
            session.lost()


def _sleep(clock: IReactorTime, seconds: float) -> defer.Deferred:
    return deferLater(clock, seconds, lambda: None)


def build_daemon(
    settings: Settings,
    reactor: Any,
    *,
    notifier: SystemdNotifier | None = None,
    log_observer: ILogObserver | None = None,
) -> DashdService:
    """The whole service tree for these settings (no listening yet). Each
    part is handed the narrow interfaces it uses (dashd.clients.seams)."""
    # Autobahn logs every frame and connection loss at debug level through
    # txaio; keep that out of the daemon's log (and off the hot path).
    txaio.use_twisted()
    txaio.set_global_log_level("info")
    private_directory(settings.state_dir)
    secret = load_or_create_secret(settings.secret_path)
    tokens = TokenVerifier(TokenIssuer(secret), RevocationList())
    catalogue_info = build_catalogue(psutil.cpu_count(logical=True) or 1)
    names = tuple(info.name for info in catalogue_info)
    configured_rules = tuple(rule_from_config_or_exit(rule, names) for rule in settings.rules)
    sequence = SequenceFile(os.path.join(settings.state_dir, "stream.seq"))
    wall_clock_ms = now_ms
    redis_bus = None
    if settings.bus == "memory":
        bus = InMemoryBus()
    else:
        from dashd.stream.redisbus import RedisBus  # txredisapi is imported only when Redis is configured

        bus = redis_bus = RedisBus.from_url(settings.bus, settings.host, reactor, sequence)
    telemetry = Telemetry()
    store = Store(
        settings.db_url,
        reactor,
        batch_interval=settings.batch_interval,
        prune_interval=settings.prune_interval,
        retention_raw=settings.retention_raw,
        retention_rollup=settings.retention_rollup,
        max_queue_rows=settings.store_queue,
        retention_hourly=settings.retention_hourly,
        describe=describe_series,
        query_timeout=settings.db_query_timeout,
        connect_timeout=settings.db_connect_timeout,
        spill_path=settings.spill_path,
        node_id=load_or_create_node_id(os.path.join(settings.state_dir, "node.id")),
        on_write=lambda seconds, rows: (telemetry.store_write_seconds.observe(seconds), telemetry.store_rows.inc(rows)),
    )
    hub = StreamHub(
        bus,
        reactor,
        sequence,
        settings.ring_span,
        lambda: names,
        sink=store,
        sequencing=redis_bus,
        shared_ring=redis_bus,
        writer=FlatWriter(lambda frame, count: telemetry.frames_sent(frame.kind, len(frame.payload), count)),
        on_fanout=lambda message, clients: telemetry.fanout_done(message, settings.host, wall_clock_ms()),
    )
    connections = ConnectionManager(settings.max_connections, settings.max_connections_per_ip)
    notifications = NotificationCenter(bus, store)
    alerting = build_alert_delivery(settings, store, reactor, on_attempt=telemetry.alert_attempted)
    rules = RuleEngine(notifications, alerting.silences)
    rules.add_observer(alerting.observe)
    rules.replace_rules(configured_rules or DEFAULT_RULES)
    rules.attach(bus)
    if settings.host_root:  # dashd in a container watching its host (issue 19 item 6)
        point_psutil_at(host_paths(settings.host_root))
    disk_path = host_paths(settings.host_root).on_host(settings.disk_path)
    # The issue 19 collectors' readings ride in the host's next sample
    # (dashd.collect.series_feed); the host's psutil read runs in a thread.
    feed = SeriesFolding(bus, settings.host)
    collector = CollectorService(
        MetricsCollector(PsutilReader(disk_path), settings.host, connections.authenticated_count),
        feed,
        reactor,
        settings.interval,
        on_sample_duration=telemetry.sample_taken,
        threaded=True,
    )
    telemetry.watch_schedule(lambda: collector.ticks)
    telemetry.registry.register(SeriesExposition(hub.series.latest))
    telemetry.watch(
        lambda: {
            "connections": connections.counts_by(),
            "queued": sum(s.stream.queued for s in connections),
            "paused": sum(1 for s in connections if s.stream.paused),
            "store_queue": store.pending_rows,
            "store_available": store.available,
            "seq": hub.seq,
            "stream_stats": [s.stream.stats for s in connections],
        }
    )
    # Authentication and revocation polling on the store's own system
    # connection, and client queries through a cost-checked scheduler
    # (issue 11 A), so a flood of history requests cannot hold them up.
    queries = QueryScheduler(
        reactor,
        concurrency=settings.query_concurrency,
        max_waiting=settings.query_queue,
        max_cost=settings.query_max_cost,
        user_cost_per_second=settings.query_user_cost_per_second,
        on_refused=telemetry.query_refused,
    )
    users = UserDirectory(
        store.system,
        tokens.tokens,
        tokens.revocations,
        access_ttl=settings.access_token_ttl,
        refresh_ttl=settings.refresh_token_ttl,
        clock=reactor,
    )
    shutdown = ShutdownHooks()
    shutdown.add(users.close)
    users.add_revocation_observer(lambda: [session.revalidate() for session in connections])
    daemon = DashdService(
        settings,
        reactor,
        store=store,
        hub=hub,
        collector=collector,
        users=users,
        rules=rules,
        configured_rules=configured_rules,
        connections=connections,
        bus=bus,
        queries=queries,
        shutdown=shutdown,
        alerting=alerting,
        bus_service=redis_bus,
        notifier=notifier,
        log_observer=log_observer,
        wall_clock_ms=wall_clock_ms,
    )
    # Issue 19 collectors (`collectors` setting): SeriesSample readings are
    # folded into the host samples (dashd.collect.series_feed); each
    # ProcessSnapshot goes to the processes stream, which keeps one every
    # processes_store_interval for the look-back.
    processes = build_process_features(settings, store, reactor, daemon, shutdown, wall_clock_ms)
    sources = build_scheduler(
        settings,
        TopicRouter(feed, {PROCESSES_TOPIC: processes.stream}),
        reactor,
        wall_clock_ms,
        on_read=telemetry.collector_read,
    )
    if sources is not None:
        sources.setServiceParent(daemon)
        shutdown.add(sources.stopService)
    web = _web_context(
        settings,
        reactor,
        wall_clock_ms,
        tokens=tokens,
        catalogue_info=catalogue_info,
        hub=hub,
        store=store,
        collector=collector,
        connections=connections,
        notifications=notifications,
        rules=rules,
        queries=queries,
        telemetry=telemetry,
        bus=bus,
        users=users,
        alerting=alerting,
        shutdown=shutdown,
        startup=daemon,
        processes=processes,
        feed=feed,
    )
    _add_listeners(daemon, settings, reactor, web)
    return daemon


def _web_context(
    settings: Settings,
    reactor: Any,
    wall_clock_ms: Callable[[], int],
    *,
    tokens: TokenVerifier,
    catalogue_info: tuple,
    hub: StreamHub,
    store: Store,
    collector: CollectorService,
    connections: ConnectionManager,
    notifications: NotificationCenter,
    rules: RuleEngine,
    queries: QueryScheduler,
    telemetry: Telemetry,
    bus: Any,
    users: UserDirectory,
    alerting: Any,
    shutdown: ShutdownHooks,
    startup: DashdService,
    processes: ProcessRequests,
    feed: SeriesFolding,
) -> WebContext:
    """Each consumer's narrow view: sessions (and their routers), the HTTP
    resources, and /ingest."""
    seed_names = [info.name for info in catalogue_info]
    collecting = set(enabled_collectors(settings))
    catalogue = MetricCatalogue(
        catalogue_info,
        settings.host,
        hub.known_metrics,
        families=lambda: hub.series.families(
            exclude=seed_names,
            expected=[
                info.name
                for info in COLLECTOR_FAMILIES
                if info.collector in collecting and not feed.has_read(info.collector)
            ],
        ),
        stored_names=lambda host: [info.key for info in store.registry.all() if info.host == host],
    )
    history = HistoryQueries(settings, catalogue, collector, store, wall_clock_ms, queries)
    audit = AuditLog(AuditRecords(store), wall_clock_ms)
    router = RouterContext(
        settings=settings,
        wall_clock_ms=wall_clock_ms,
        tokens=tokens,
        catalogue=catalogue,
        sampling=collector,
        history=history,
        stream=hub,
        stored=store,
        reads=NotificationReads(store),
        notifications=notifications,
        rules=rules,
        rule_store=store,
        audit=audit,
        registry=connections,
        queries=queries,
        telemetry=telemetry,
        processes=processes,
    )
    sessions = SessionFactory(
        SessionContext(
            settings=settings,
            clock=reactor,
            wall_clock_ms=wall_clock_ms,
            hub=hub,
            registry=connections,
            sampling=collector,
            catalogue=catalogue,
            tokens=tokens,
            router=router,
            queries=queries,
            telemetry=telemetry,
            closed_observers=(
                lambda session: telemetry.stream_closed(session.stream.stats),
                processes.stream.unsubscribe,
            ),
        )
    )
    ingest = build_ingest_service(settings, store, bus, hub, reactor, telemetry)
    return WebContext(
        settings=settings,
        clock=reactor,
        wall_clock_ms=wall_clock_ms,
        tokens=tokens,
        catalogue=catalogue,
        collector=collector,
        history=history,
        store=store,
        startup=startup,
        sessions=sessions,
        ingest=ingest,
        shutdown=shutdown,
        audit=audit,
        users=users,
        alerting=alerting,
        telemetry=telemetry,
        processes=processes,
    )


def build_ingest_service(
    settings: Settings, store: Store, bus: Any, hub: StreamHub, clock: IReactorTime, telemetry: Telemetry | None
) -> IngestService:
    """The daemon's one IngestService: every listener's /ingest (plain and
    TLS) shares it, so de-duplication and the per-host locks are global."""
    limits = AgentLimits(settings.agent_samples_per_second, settings.agent_max_series)
    # The ticket covers what the store has recorded when it is taken: with
    # the in-process bus that includes the batch just published (delivery
    # is synchronous); with the Redis bus it may not yet, so there the
    # confirmation waits for flushes as before.
    durable = store.when_written if isinstance(bus, InMemoryBus) else None
    return IngestService(
        lambda sample: bus.publish(METRICS_TOPIC, sample),
        StoredTimestamps(store),
        store.flush,
        limits=limits,
        clock=clock,
        durable=durable,
        store_backlog=lambda: (store.pending_rows, store.max_queue_rows),
        on_refused=telemetry.ingest_refused if telemetry is not None else lambda reason: None,
        accepting=lambda: hub.running,
    )


def _add_listeners(daemon: DashdService, settings: Settings, reactor: Any, web: WebContext) -> None:
    # One gate for every listener: TCP connections per address and in total,
    # the total kept below the open-files limit (raised first).
    gate = ConnectionGate(
        settings.tcp_connections_per_ip,
        max(16, raise_open_files_limit() - FD_HEADROOM),
        exempt=settings.trusted_proxies,
    )
    tls_port = None
    for description in settings.tls_listen:
        endpoint, tls_port = tls_endpoint(reactor, description)
        daemon.add_listener(EndpointListener(endpoint, build_site(web, secure=True, gate=gate), description))
    for description in settings.listen:
        site = build_site(web, secure=False, gate=gate)
        if settings.redirect_http and settings.tls_listen:
            site = GuardedSite(
                RedirectToTLS(tls_port, settings.public_url),
                front_door(settings, web.tokens, reactor, web.shutdown, gate, secure=False),
            )
        try:
            endpoint = serverFromString(reactor, description)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError("listen", description, f"not a Twisted endpoint string ({e})") from None
        daemon.add_listener(EndpointListener(endpoint, site, description))


def build_process_features(
    settings: Settings,
    store: Store,
    reactor: Any,
    daemon: DashdService,
    shutdown: ShutdownHooks,
    wall_clock_ms: Callable[[], int],
) -> ProcessRequests:
    """The processes stream and its look-back (issue 19 items 2 and 3)."""
    history = ProcessHistory(
        store,
        reactor,
        store_interval=settings.processes_store_interval,
        prune_interval=settings.prune_interval,
        wall_clock_ms=wall_clock_ms,
    )
    history.setServiceParent(daemon)
    shutdown.add(history.stopService)  # writes what is pending before the store stops
    # Views are encoded in the reactor's thread pool; the reactor only writes frames.
    stream = ProcessStream(history, runner=lambda work: deferToThreadPool(reactor, reactor.getThreadPool(), work))
    return ProcessRequests(
        stream,
        history,
        host=settings.host,
        interval=settings.processes_interval,
        default_limit=settings.processes_top,
        cmdlines=settings.process_cmdlines,
        live="processes" in enabled_collectors(settings),
        wall_clock_ms=wall_clock_ms,
    )


def rule_from_config_or_exit(rule, names):
    try:
        return rule_from_config(rule, names)
    except ValueError as e:
        raise ConfigError(f"rules.{rule.name}", rule.spec, str(e).split(": ", 1)[-1]) from None


def makeService(config: Options, reactor: Any = None) -> IService:
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    settings: Settings = config.settings
    log.info(
        "dashd {version} starting: db {db}, interval {interval}s, host {host}",
        version=__version__,
        db=redact_url(settings.db_url),
        interval=settings.interval,
        host=settings.host,
    )
    # config.parent: twistd's own options (--logfile, --nodaemon).
    log_observer = observer_for_twistd(getattr(config, "parent", None)) if settings.log_format == "json" else None
    try:
        daemon = build_daemon(settings, reactor, notifier=SystemdNotifier.from_environment(), log_observer=log_observer)
    except ConfigError as e:
        # One clear line on stderr and exit status 1, not a traceback.
        raise SystemExit(f"dashd: {e}") from None
    # Only twistd calls makeService: a second SIGTERM/SIGINT is answered quietly.
    reactor.callWhenRunning(StopSignals().install, reactor)
    return daemon
