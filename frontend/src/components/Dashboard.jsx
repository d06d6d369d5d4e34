// The live dashboard: connection, tiles, charts, controls, notifications and
// (for admins) administration.
//
// Data flow: useWebSocket buffers stream messages and calls handleBatch at
// most once per animation frame; handleBatch applies the batch to the series
// store (outside React), then store.notify() lets every chart redraw in place
// and the tile grid re-render once. React state here holds only what the user
// changes (window, pause, rate, selection); notifications and alert state
// live in hooks/useNotificationState.js.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import ConnectionStatus from './ConnectionStatus';
import ControlPanel from './ControlPanel';
import MetricsChart from './MetricsChart';
import MetricTiles from './MetricTiles';
import HostsOverview, { createHostsSeries } from './HostsOverview';
import NotificationsPanel from './NotificationsPanel';
import ActiveAlerts from './ActiveAlerts';
import DisconnectedBanner from './DisconnectedBanner';
import Toasts, { MAX_TOASTS } from './Toasts';
import AdminPanel from './AdminPanel';
import AlertingPanel from './alerting/AlertingPanel';
import AlertRangeView from './alerting/AlertRangeView';
import HostDetails, { ProcessesAtDialog, createHostFeed, hostSubscription } from './host/HostDetails';
import { alertLinkParams } from '../services/alertingApi';
import { useNotificationState } from '../hooks/useNotificationState';
import { createOutageLog, expectedStepMs, maxGapFor } from '../services/gaps';
import { readPreference, writePreference } from '../services/preferences';
import { STATUS, endpointUrl, useWebSocket } from '../hooks/useWebSocket';
import { AUTH } from '../hooks/useAuth';
import { createSeriesStore } from '../services/seriesStore';
import { createFrameProfiler } from '../services/frameProfiler';
import { historyToSeries, toEpochMs, toSample } from '../protocol/parse';
import { CHART_GROUPS, expandMetrics } from '../services/chartGroups';
import { DEFAULT_UNITS, HOUR_MS, MAX_WINDOW_MS, METRIC_GROUPS, MINUTE_MS, RATE_CHOICES, SECOND_MS, TILE_METRICS, TIME_WINDOWS, subscriptionFor } from '../services/constants';
import { roleAtLeast } from '../services/roles';
import { createDiagnostics, installDiagnostics } from '../diagnostics/dashdDiagnostics';

/** Points asked per series when filling a window from `history`. */
export const HISTORY_MAX_POINTS = 1000;
/** A hidden tab lowers its rate to this after HIDDEN_THROTTLE_AFTER_MS. */
export const HIDDEN_RATE_HZ = 0.2;
export const HIDDEN_THROTTLE_AFTER_MS = 30 * SECOND_MS;
/** Only critical notifications younger than this raise a toast (not old replays). */
export const TOAST_MAX_AGE_MS = 5 * MINUTE_MS;
/** A window counts as filled when data reaches this close to its left edge. */
const WINDOW_FILL_TOLERANCE_MS = 5 * SECOND_MS;
const CLOCK_TICK_MS = 30 * SECOND_MS;
const WINDOW_KEY = 'dashd.window';
const GROUPS_KEY = 'dashd.groups';
const NETWORK_UNIT_KEY = 'dashd.networkUnit';

const ALL_GROUPS = METRIC_GROUPS.map((g) => g.id);
const CHART_GROUP_OF = { cpu: 'cpu', memory: 'memory', network: 'network', disk: 'disk', connections: 'system' };

const LABELS = {
  cpu_usage: 'Total',
  memory_usage: 'Memory',
  swap_usage: 'Swap',
  network_rx: 'Received',
  network_tx: 'Sent',
  disk_read: 'Read',
  disk_write: 'Written',
  active_connections: 'Clients',
};

function labelFor(name) {
  if (LABELS[name]) return LABELS[name];
  const core = /^cpu_core_(\d+)$/.exec(name);
  return core ? `Core ${core[1]}` : name;
}

function readWindowPreference() {
  return readPreference(WINDOW_KEY, (v) => (TIME_WINDOWS.some((w) => w.id === v) ? v : undefined), '5m');
}

/** Metric groups chosen earlier (issue 16 item 10: they survive a reload). */
function readGroupsPreference() {
  return readPreference(
    GROUPS_KEY,
    (v) => {
      const list = JSON.parse(v);
      return Array.isArray(list) ? ALL_GROUPS.filter((g) => list.includes(g)) : undefined;
    },
    ALL_GROUPS,
  );
}

function relativeSpan(ms) {
  return ms >= HOUR_MS ? `-${ms / HOUR_MS}h` : `-${Math.round(ms / MINUTE_MS)}m`;
}

export default function Dashboard({ auth, theme }) {
  const store = useMemo(() => createSeriesStore(), []);
  const profiler = useMemo(() => createFrameProfiler(), []);
  const chartRegistry = useMemo(() => new Map(), []);
  const hostFeed = useMemo(() => createHostFeed(), []);
  const [lookBackAt, setLookBackAt] = useState(null);

  const [windowId, setWindowId] = useState(readWindowPreference);
  const [paused, setPaused] = useState(false);
  const [bufferedWhilePaused, setBufferedWhilePaused] = useState(0);
  const [rateId, setRateId] = useState('live');
  const [effectiveHz, setEffectiveHz] = useState(null);
  const [intervalS, setIntervalS] = useState(null);
  const [groups, setGroups] = useState(readGroupsPreference);
  const [networkUnit, setNetworkUnit] = useState(() => readPreference(NETWORK_UNIT_KEY, (v) => (v === 'bits' ? 'bits' : 'bytes'), 'bytes'));
  const [adminView, setAdminView] = useState(false);
  // The host shown (null: the daemon's own). Samples of other hosts (agents)
  // share the stream; they are counted but not drawn.
  const [host, setHost] = useState(null);
  const [hosts, setHosts] = useState([]);
  const [toasts, setToasts] = useState([]);
  const [controlsOpen, setControlsOpen] = useState(false);
  const [banner, setBanner] = useState(null);
  const [now, setNow] = useState(() => Date.now());
  // Opened from an alert's link (/?from=&to=&host=): that range, on top.
  const [alertRange, setAlertRange] = useState(() => alertLinkParams(window.location.search));

  const windowMs = TIME_WINDOWS.find((w) => w.id === windowId).ms;
  const session = auth.session;

  // Current settings for callbacks that run outside render (socket events).
  const settings = useRef({ windowMs, paused, rateId, groups, host });
  const knownHosts = useRef(new Set());
  // CPU/memory of every host for the overview (small multiples), fed below.
  const hostSeries = useMemo(() => createHostsSeries(), []);
  const sendRef = useRef(null);
  const ackRef = useRef(null);
  const hiddenThrottle = useRef(null);
  const pausedCount = useRef(0);
  const toastKey = useRef(0);

  const pushToast = useCallback((toast) => {
    toastKey.current += 1;
    const key = toastKey.current;
    setToasts((ts) => [...ts, { ...toast, key }].slice(-MAX_TOASTS));
  }, []);
  const dismissToast = useCallback((key) => setToasts((ts) => ts.filter((t) => t.key !== key)), []);
  // Toasts follow acknowledgement: once anyone acknowledges, its toast goes.
  const dropToastsFor = useCallback((id) => setToasts((ts) => ts.filter((t) => t.notificationId !== id)), []);
  const reportError = useCallback((title, message) => pushToast({ level: 'warning', title, message }), [pushToast]);
  const notes = useNotificationState({ sendRef, onAcknowledged: dropToastsFor, onError: reportError });
  // Spans where the daemon or the connection was down (shaded on the charts).
  const outages = useMemo(() => createOutageLog(), []);
  // -- requests --------------------------------------------------------------

  const catalogueNames = useCallback(() => (ackRef.current?.metrics || []).map((m) => m.name), []);

  const historyMetrics = useCallback(() => {
    const names = catalogueNames();
    const wanted = new Set();
    for (const g of CHART_GROUPS) {
      if (!settings.current.groups.includes(CHART_GROUP_OF[g.id])) continue;
      expandMetrics(g.metrics, names).forEach((n) => wanted.add(n));
    }
    for (const t of TILE_METRICS) if (settings.current.groups.includes(t.group)) wanted.add(t.name);
    return names.length ? [...wanted].filter((n) => names.includes(n)) : [...wanted];
  }, [catalogueNames]);

  const fillHistory = useCallback(
    async ({ from, to }) => {
      const send = sendRef.current;
      const metrics = historyMetrics();
      if (!send || !metrics.length) return;
      const limit = ackRef.current?.limits?.max_history_points ?? HISTORY_MAX_POINTS;
      const data = { metrics, from, max_points: Math.min(limit, HISTORY_MAX_POINTS) };
      if (to !== undefined) data.to = to;
      const forHost = settings.current.host;
      if (forHost) data.host = forHost;
      try {
        const reply = await send('history', data);
        if (settings.current.host !== forHost) return; // the user switched hosts meanwhile
        const { series, bucketMs } = historyToSeries(reply);
        store.mergeHistory(series, { bucketMs });
        store.trim();
        store.notify();
      } catch (err) {
        if (err.code) pushToast({ level: 'warning', title: 'History unavailable', message: err.message });
      }
    },
    [historyMetrics, store, pushToast],
  );

  const applyRate = useCallback(async (id) => {
    const send = sendRef.current;
    if (!send) return;
    const choice = RATE_CHOICES.find((r) => r.id === id) || RATE_CHOICES[0];
    const maxHz = choice.hz ?? ackRef.current?.limits?.max_rate_hz ?? 10;
    try {
      const reply = await send('set_rate', { max_hz: maxHz });
      setEffectiveHz(reply.effective_hz ?? reply.max_hz ?? null);
    } catch {
      // Not connected: onConnected re-applies the rate.
    }
  }, []);

  const applySubscription = useCallback(
    async (selected) => {
      const send = sendRef.current;
      if (!send) return;
      const names = catalogueNames();
      const patterns = selected.length === ALL_GROUPS.length
        ? ['*']
        : [...new Set([...subscriptionFor(selected).filter((p) => !names.length || names.some((n) => (p.endsWith('*') ? n.startsWith(p.slice(0, -1)) : n === p))), ...hostSubscription(ackRef.current?.families)])];
      try {
        await send('unsubscribe', {});
        if (patterns.length) await send('subscribe', { metrics: patterns });
      } catch (err) {
        if (err.code) pushToast({ level: 'warning', title: 'Subscription failed', message: err.message });
      }
    },
    [catalogueNames, pushToast],
  );

  const loadNotifications = notes.load;
  const { onAckMessage, onNotifications } = notes;

  /**
   * Samples neither the replay ring nor the store could deliver: refill the
   * charts for that span from history. The gap arrives before the replayed
   * messages are applied, so when it carries no times, the newest sample we
   * hold marks its start and "now" its end; mergeHistory only fills buckets
   * that have no live point, so the overlap with the replay is harmless.
   */
  const refillGap = useCallback(
    (gap) => {
      const newest = store.newestTime();
      let from = toEpochMs(gap.from);
      const to = toEpochMs(gap.to);
      if (!Number.isFinite(from)) from = newest;
      const oldestUseful = (Number.isFinite(newest) ? newest : Date.now()) - MAX_WINDOW_MS;
      if (Number.isFinite(from) && !(Number.isFinite(to) && to < oldestUseful)) {
        const range = { from: new Date(Math.max(from, oldestUseful)).toISOString() };
        if (Number.isFinite(to)) range.to = new Date(to).toISOString();
        fillHistory(range);
      }
      const count = Number.isFinite(gap.to_seq - gap.from_seq) ? gap.to_seq - gap.from_seq + 1 : null;
      setBanner({ level: 'info', text: `${count ? `${count} updates` : 'Some updates'} could not be replayed; the charts were refilled from history.` });
    },
    [store, fillHistory],
  );

  const noteHost = useCallback((name) => {
    if (!name || knownHosts.current.has(name)) return;
    knownHosts.current.add(name);
    setHosts([...knownHosts.current].sort());
  }, []);

  // -- the stream --------------------------------------------------------------

  const handleBatch = useCallback(
    (batch) => {
      const start = profiler.now();
      const fresh = [];
      let samples = 0;
      for (const msg of batch) {
        switch (msg.type) {
          case 'metrics_update': {
            const sample = toSample(msg);
            if (!sample) break;
            noteHost(sample.host);
            hostSeries.add(sample);
            const shown = settings.current.host ?? ackRef.current?.host;
            if (sample.host && shown && sample.host !== shown) {
              store.noteSeq(sample.seq);
              break;
            }
            // The first sample after a reconnect ends a known outage.
            if (outages.isOpen()) outages.close(sample.t, gapRef.current);
            store.appendSample(sample);
            samples += 1;
            break;
          }
          case 'notification':
            store.noteSeq(msg.seq);
            fresh.push(msg.data);
            break;
          case 'notification_ack':
            store.noteSeq(msg.seq);
            onAckMessage(msg.data);
            break;
          case 'processes':
            hostFeed.push(msg);
            break;
          case 'resume_gap':
            refillGap(msg.data);
            break;
          case 'stream_degraded':
            setBanner(msg.data.reason === 'recovered' ? null : { level: 'warning', text: `Stream degraded (${msg.data.reason}); updates are being coalesced.` });
            break;
          case 'seq_reset':
            fillHistory({ from: relativeSpan(settings.current.windowMs) });
            break;
          case 'error':
            pushToast({ level: 'warning', title: `Server error: ${msg.data.code}`, message: msg.data.message });
            break;
          default:
            break;
        }
      }
      if (fresh.length) {
        onNotifications(fresh);
        const cutoff = Date.now() - TOAST_MAX_AGE_MS;
        for (const n of fresh) {
          if (n.level === 'critical' && !n.acknowledged_by && toEpochMs(n.timestamp) >= cutoff) {
            pushToast({ level: 'critical', title: n.title, message: n.message, notificationId: String(n.id) });
          }
        }
      }
      if (samples) {
        store.trim();
        if (settings.current.paused) {
          pausedCount.current += samples;
          setBufferedWhilePaused(pausedCount.current);
        }
      }
      store.notify();
      // Queued after React's own microtask for the tile re-render, so the
      // measured time covers store, chart draws and the tile render.
      queueMicrotask(() => profiler.record(start, profiler.now()));
    },
    [store, profiler, fillHistory, refillGap, pushToast, noteHost, hostSeries, onAckMessage, onNotifications, outages, hostFeed],
  );

  const onConnected = useCallback(
    (ack, { resumed, seqReset }) => {
      ackRef.current = ack;
      noteHost(ack.host);
      const s = settings.current;
      setEffectiveHz(ack.rate?.max_hz ?? (ack.interval ? 1 / ack.interval : null));
      setIntervalS(Number.isFinite(ack.interval) ? ack.interval : null);
      if (s.groups.length !== ALL_GROUPS.length) applySubscription(s.groups);
      if (hiddenThrottle.current) {
        sendRef.current?.('set_rate', { max_hz: HIDDEN_RATE_HZ }).catch(() => {});
      } else if (s.rateId !== 'live') {
        applyRate(s.rateId);
      }
      // Read state and alerts can have changed while we were away: always reload them.
      loadNotifications();
      if (!resumed || seqReset) fillHistory({ from: relativeSpan(s.windowMs) });
    },
    [applyRate, applySubscription, fillHistory, loadNotifications, noteHost],
  );

  const ws = useWebSocket(session ? endpointUrl('/dashboard') : null, {
    getToken: auth.getToken,
    refreshToken: auth.refreshToken,
    onUnauthorized: auth.markExpired,
    onMessages: handleBatch,
    onConnected,
  });
  sendRef.current = ws.send;

  useLayoutEffect(() => {
    settings.current = { windowMs, paused, rateId, groups, host };
  });

  const connected = ws.status === STATUS.CONNECTED;
  // A drop opens an outage at the newest sample held; the first sample after
  // the reconnect closes it (handleBatch).
  useEffect(() => {
    if (!connected && ws.disconnectedSince) outages.open(store.newestTime());
  }, [connected, ws.disconnectedSince, outages, store]);
  const throttledHz = rateId === 'live' ? null : RATE_CHOICES.find((r) => r.id === rateId)?.hz;
  const gapMs = maxGapFor(expectedStepMs({ intervalS, rateHz: throttledHz }));
  const gapRef = useRef(gapMs);
  gapRef.current = gapMs;
  const ack = ws.ack;
  const role = ack?.role || session?.role || 'viewer';

  // After a fresh sign-in over an expired session, reconnect (and resume).
  // While the session is marked expired the socket waits in "unauthorized".
  const signedIn = auth.status === AUTH.SIGNED_IN;
  const reconnect = ws.reconnect;
  const status = ws.status;
  useEffect(() => {
    if (signedIn && status === STATUS.UNAUTHORIZED) reconnect();
  }, [signedIn, status, reconnect]);

  // A hidden tab stops drawing (charts check document.hidden) and, after a
  // while, lowers its rate; on return it restores the rate and refills the
  // skipped span from history.
  useEffect(() => {
    let timer = null;
    const onVisibility = () => {
      clearTimeout(timer);
      timer = null;
      if (document.hidden) {
        const since = store.newestTime();
        timer = setTimeout(() => {
          const current = RATE_CHOICES.find((r) => r.id === settings.current.rateId);
          if (current?.hz !== null && current?.hz <= HIDDEN_RATE_HZ) return;
          sendRef.current?.('set_rate', { max_hz: HIDDEN_RATE_HZ }).then(
            () => {
              hiddenThrottle.current = { since };
            },
            () => {},
          );
        }, HIDDEN_THROTTLE_AFTER_MS);
      } else if (hiddenThrottle.current) {
        const { since } = hiddenThrottle.current;
        hiddenThrottle.current = null;
        applyRate(settings.current.rateId);
        if (Number.isFinite(since)) fillHistory({ from: new Date(since).toISOString() });
      }
    };
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [store, applyRate, fillHistory]);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), CLOCK_TICK_MS);
    return () => clearInterval(t);
  }, []);

  // Diagnostics for tests and the frame-budget measurement (window.__dashd).
  const lastSeq = ws.lastSeq;
  useEffect(
    () => installDiagnostics(createDiagnostics({ store, profiler, charts: chartRegistry, lastSeq, ack: () => ackRef.current })),
    [store, profiler, chartRegistry, lastSeq],
  );

  // -- user actions ------------------------------------------------------------

  const onWindow = (id) => {
    setWindowId(id);
    writePreference(WINDOW_KEY, id);
    const ms = TIME_WINDOWS.find((w) => w.id === id).ms;
    const newest = store.newestTime();
    const chartNames = historyMetrics();
    if (!Number.isFinite(newest) || store.oldestTime(chartNames) > newest - ms + WINDOW_FILL_TOLERANCE_MS) {
      fillHistory({ from: relativeSpan(ms) });
    }
  };

  const onPause = () => {
    setPaused((p) => {
      if (p) {
        pausedCount.current = 0;
        setBufferedWhilePaused(0);
      }
      return !p;
    });
  };

  const onRate = (id) => {
    setRateId(id);
    applyRate(id);
  };

  const onToggleGroup = (id) => {
    const next = groups.includes(id) ? groups.filter((g) => g !== id) : ALL_GROUPS.filter((g) => g === id || groups.includes(g));
    setGroups(next);
    writePreference(GROUPS_KEY, JSON.stringify(next));
    settings.current = { ...settings.current, groups: next };
    applySubscription(next);
  };

  const onAck = notes.ack;
  const onNetworkUnit = (unit) => {
    setNetworkUnit(unit);
    writePreference(NETWORK_UNIT_KEY, unit);
  };

  const onHost = (name) => {
    const next = name === ack?.host ? null : name;
    setHost(next);
    settings.current = { ...settings.current, host: next };
    store.clear();
    fillHistory({ from: relativeSpan(windowMs) });
  };

  const onRead = notes.markRead;

  // -- derived view ------------------------------------------------------------

  const catalogue = ack?.metrics;
  const units = useMemo(() => {
    const u = { ...DEFAULT_UNITS };
    for (const m of catalogue || []) u[m.name] = m.unit;
    return u;
  }, [catalogue]);
  const names = useMemo(() => (catalogue || []).map((m) => m.name), [catalogue]);
  const available = useMemo(() => (names.length ? new Set(names) : null), [names]);
  const cores = useMemo(() => Math.max(1, names.filter((n) => n.startsWith('cpu_core_')).length), [names]);
  const charts = useMemo(
    () =>
      CHART_GROUPS.map((g) => {
        const metrics = expandMetrics(g.metrics, names).filter((n) => !available || available.has(n));
        const labels = Object.fromEntries(metrics.map((m) => [m, labelFor(m)]));
        return { ...g, metrics, labels };
      }),
    [names, available],
  );
  const unread = notes.unread;
  const disconnected = !connected && Boolean(ws.disconnectedSince) && ws.status !== STATUS.UNAUTHORIZED;
  const canAck = roleAtLeast(role, 'operator');
  const isAdmin = roleAtLeast(role, 'admin');

  return (
    <div className={`app${disconnected ? ' is-disconnected' : ''}${adminView ? ' is-admin-view' : ''}`}>
      <a className="skip-link" href="#main">Skip to the dashboard</a>
      <header className="topbar">
        <h1 className="brand">
          <span className="brand-mark" aria-hidden="true">◆</span>
          <span className="brand-name">dashd</span>
          {host || ack?.host ? <span className="brand-host"><span className="sr-only">, host </span>{host || ack.host}</span> : null}
        </h1>
        <ConnectionStatus view={ws} onRetry={ws.reconnect} />
        <nav className="topbar-actions" aria-label="Account and panels">
          <a className="icon-btn bell" href="#notifications" aria-label={`Notifications, ${unread} unread`}>
            <svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
              <path
                fill="currentColor"
                d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
              />
            </svg>
            {unread ? <span className="bell-count" aria-hidden="true">{unread > 99 ? '99+' : unread}</span> : null}
          </a>
          {isAdmin ? (
            <button type="button" className="btn view-btn" aria-pressed={adminView} onClick={() => setAdminView((v) => !v)}>
              {adminView ? 'Dashboard' : 'Administration'}
            </button>
          ) : null}
          <button
            type="button"
            className="btn menu-btn"
            aria-expanded={controlsOpen}
            aria-controls="controls"
            onClick={() => setControlsOpen((o) => !o)}
          >
            ☰ Controls
          </button>
          <span className="user" title={`signed in as ${session?.username} (${role})`}>
            <span className="user-name">{session?.username}</span>
            <span className={`role role-${role}`}>{role}</span>
          </span>
          <button type="button" className="btn" onClick={auth.logout}>
            Sign out
          </button>
        </nav>
      </header>

      <ControlPanel
        id="controls"
        open={controlsOpen}
        windowId={windowId}
        onWindow={onWindow}
        paused={paused}
        onPause={onPause}
        bufferedWhilePaused={bufferedWhilePaused}
        rateId={rateId}
        onRate={onRate}
        effectiveHz={connected ? effectiveHz : null}
        receivedHz={connected ? ws.updatesPerSecond : null}
        groups={groups}
        onToggleGroup={onToggleGroup}
        theme={theme.preference}
        onTheme={theme.setPreference}
        hosts={hosts}
        host={host ?? ack?.host ?? ''}
        onHost={onHost}
        disabled={!connected}
        networkUnit={networkUnit}
        onNetworkUnit={onNetworkUnit}
      />

      {disconnected ? <DisconnectedBanner since={ws.disconnectedSince} status={ws.status} onRetry={ws.reconnect} /> : null}

      {banner ? (
        <div className={`banner banner-${banner.level}`} role="status">
          <span>{banner.text}</span>
          <button type="button" className="icon-btn" onClick={() => setBanner(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      ) : null}

      <div className="layout">
        <main id="main" className="main" tabIndex={-1}>
          {alertRange ? (
            <AlertRangeView range={alertRange} getToken={auth.getToken} onClose={() => setAlertRange(null)} />
          ) : null}
          <HostsOverview series={hostSeries} hosts={hosts} current={host ?? ack?.host} onSelect={onHost} />
          <MetricTiles store={store} units={units} cores={cores} groups={groups} available={available} paused={paused} theme={theme.resolved} gapMs={gapMs} />
          <section className="charts" aria-label="Live charts">
            {charts
              .filter((c) => groups.includes(CHART_GROUP_OF[c.id]))
              .map((c) => (
                <MetricsChart
                  key={c.id}
                  id={c.id}
                  title={c.title}
                  unit={c.id === 'network' && networkUnit === 'bits' ? 'bit/s' : c.unit}
                  yMax={c.yMax}
                  metrics={c.metrics}
                  labels={c.labels}
                  store={store}
                  windowMs={windowMs}
                  paused={paused}
                  theme={theme.resolved}
                  registry={chartRegistry}
                  gapMs={gapMs}
                  outages={outages}
                  onPointClick={c.id === 'cpu' || c.id === 'memory' ? setLookBackAt : undefined}
                />
              ))}
          </section>
          <HostDetails store={store} feed={hostFeed} send={ws.send} ack={ack} connected={connected} role={role} host={host ?? ack?.host ?? null} windowMs={windowMs} paused={paused} theme={theme.resolved} gapMs={gapMs} onLookBack={setLookBackAt} />
          {lookBackAt !== null ? <ProcessesAtDialog time={lookBackAt} send={ws.send} host={host ?? ack?.host} onClose={() => setLookBackAt(null)} /> : null}
          <div className="admin-area">
          {isAdmin ? <AdminPanel send={ws.send} connected={connected} metricNames={names} /> : null}
          {session ? <AlertingPanel getToken={auth.getToken} role={role} /> : null}
          </div>
        </main>
        <aside className="side" aria-label="Alerts and notifications">
          <ActiveAlerts alerts={notes.alerts} canAck={canAck} onAck={onAck} pendingAcks={notes.pendingAcks} now={now} />
          <NotificationsPanel
            items={notes.items}
            unread={unread}
            activeIds={notes.activeIds}
            unacknowledged={notes.unacknowledged}
            canAck={canAck}
            onAck={onAck}
            onRead={onRead}
            pendingAcks={notes.pendingAcks}
            now={now}
          />
        </aside>
      </div>
      <Toasts toasts={toasts} onDismiss={dismissToast} onAck={canAck ? onAck : null} />
    </div>
  );
}
