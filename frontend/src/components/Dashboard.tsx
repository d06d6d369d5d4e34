// The dashboard page: header, controls, time range, tiles, charts, extra
// panels, notifications and (for admins) administration.
//
// The stream (socket, series store, requests, notifications, toasts) is the
// useDashboardStream hook; what is shown (range, host, panels) is
// useViewState, kept in the address; the explorer wiring (zoom, pan, shared
// crosshair, annotations, export links) is useExplorer below. The layout is a
// list: charts come from CHART_GROUPS, further panels from DASHBOARD_PANELS.

import { Fragment, useCallback, useEffect, useMemo, useState } from 'react';
import ControlPanel from './ControlPanel';
import DashboardHeader from './DashboardHeader';
import MetricsChart, { type ChartExplore } from './MetricsChart';
import MetricTiles from './MetricTiles';
import HostsOverview from './HostsOverview';
import NotificationsPanel from './NotificationsPanel';
import ActiveAlerts from './ActiveAlerts';
import DisconnectedBanner from './DisconnectedBanner';
import Toasts from './Toasts';
import AdminPanel from './AdminPanel';
import AlertingPanel from './alerting/AlertingPanel';
import TimeRangeBar from './TimeRangeBar';
import HostDetails, { ProcessesAtDialog } from './host/HostDetails';
import type { HostAckData } from '../protocol/hostTypes';
import NotificationDialog, { type OpenedNotification } from './NotificationDialog';
import { DASHBOARD_PANELS, type PanelContext } from './dashboardPanels';
import type { ChartAnnotation } from './chartSetup';
import { CHART_GROUP_OF, useDashboardStream, type DashboardStream } from '../hooks/useDashboardStream';
import { useViewState, type ViewStateHandle } from '../hooks/useViewState';
import { STATUS } from '../hooks/useWebSocket';
import type { Auth } from '../hooks/useAuth';
import type { Theme, ThemePreference } from '../hooks/useTheme';
import { createCrosshair } from '../services/crosshair';
import { CHART_GROUPS, expandMetrics } from '../services/chartGroups';
import { DEFAULT_UNITS, MAX_WINDOW_MS, MINUTE_MS, SECOND_MS } from '../services/constants';
import { readPreference, writePreference } from '../services/preferences';
import { roleAtLeast } from '../services/roles';
import { liveRange, panRange, zoomOut, zoomTo, type Span, type ViewRange } from '../services/timeRange';
import { toEpochMs } from '../protocol/parse';

const CLOCK_TICK_MS = 30 * SECOND_MS;
/** A live range drawn from history refreshes about every pixel's worth, within these bounds. */
const HISTORY_REFRESH_MIN_MS = 15 * SECOND_MS;
const HISTORY_REFRESH_MAX_MS = 5 * MINUTE_MS;
const NETWORK_UNIT_KEY = 'dashd.networkUnit';

const LABELS: Readonly<Record<string, string>> = {
  cpu_usage: 'Total',
  memory_usage: 'Memory',
  swap_usage: 'Swap',
  network_rx: 'Received',
  network_tx: 'Sent',
  disk_read: 'Read',
  disk_write: 'Written',
  active_connections: 'Clients',
};

function labelFor(name: string): string {
  if (LABELS[name]) return LABELS[name];
  const core = /^cpu_core_(\d+)$/.exec(name);
  return core ? `Core ${core[1]}` : name;
}

export interface DashboardProps {
  auth: Auth;
  theme: { preference: ThemePreference; resolved: Theme; setPreference: (p: string) => void };
}

/** The clock, ticking every `everyMs`. */
function useNow(everyMs: number): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(t);
  }, [everyMs]);
  return now;
}

/** The past range the charts draw from `history`, or null while they draw the live buffer. */
export function historySpan(range: ViewRange, now: number): Span | null {
  if (range.kind === 'absolute') return { from: range.from, to: range.to };
  return range.spanMs > MAX_WINDOW_MS ? { from: now - range.spanMs, to: now } : null;
}

function annotationOf(n: { id: unknown; timestamp: unknown; title?: unknown; level?: unknown; message?: unknown; state?: unknown }): OpenedNotification | null {
  const t = typeof n.timestamp === 'number' ? n.timestamp : toEpochMs(n.timestamp);
  if (!Number.isFinite(t)) return null;
  return {
    id: String(n.id),
    t,
    title: String(n.title ?? ''),
    level: String(n.level ?? 'info'),
    message: typeof n.message === 'string' ? n.message : undefined,
    state: typeof n.state === 'string' ? n.state : undefined,
  };
}

/** Whether two marker lists show the same notifications at the same times. */
export function sameAnnotations(a: readonly OpenedNotification[], b: readonly OpenedNotification[]): boolean {
  return a.length === b.length && a.every((x, i) => x.id === b[i].id && x.t === b[i].t && x.title === b[i].title && x.level === b[i].level && x.state === b[i].state && x.message === b[i].message);
}

/** Zoom, pan, crosshair, annotations and export links for every chart. */
function useExplorer(stream: DashboardStream, view: ViewStateHandle, span: Span | null): { explore: ChartExplore; opened: OpenedNotification | null; closeNote(): void } {
  const crosshair = useMemo(() => createCrosshair(), []);
  const { setRange, backToLive, host } = view;
  const { loadHistory, loadNotifications, notes } = stream;
  const [ranged, setRanged] = useState<OpenedNotification[]>([]);
  const [opened, setOpened] = useState<OpenedNotification | null>(null);

  // Notifications of a past range come from the server; recent ones are in the feed.
  const spanFrom = span?.from ?? null;
  const spanTo = span?.to ?? null;
  const { connected } = stream;
  useEffect(() => {
    if (spanFrom === null || spanTo === null || !connected) return undefined;
    let current = true;
    loadNotifications(spanFrom, spanTo).then(
      (items) => {
        if (!current) return;
        const next = items.map(annotationOf).filter((a): a is OpenedNotification => a !== null);
        // Usually the same markers as before the zoom: keep the list, so the charts do not re-render.
        setRanged((prev) => (sameAnnotations(prev, next) ? prev : next));
      },
      () => current && setRanged((prev) => (prev.length ? [] : prev)),
    );
    return () => {
      current = false;
    };
  }, [spanFrom, spanTo, connected, loadNotifications]);

  const annotations = useMemo(() => {
    const byId = new Map<string, OpenedNotification>();
    for (const a of ranged) byId.set(a.id, a);
    for (const n of notes.items) {
      const a = annotationOf(n as unknown as Parameters<typeof annotationOf>[0]);
      if (a) byId.set(a.id, a);
    }
    return [...byId.values()].sort((a, b) => a.t - b.t);
  }, [ranged, notes.items]);

  const onOpenAnnotation = useCallback((id: string) => setOpened(annotations.find((a) => a.id === id) ?? null), [annotations]);
  const maxPoints = stream.ack?.limits?.max_history_points ?? null;
  const explore = useMemo<ChartExplore>(
    () => ({
      span,
      host,
      maxPoints,
      loadHistory,
      crosshair,
      annotations: annotations as ChartAnnotation[],
      onZoom: (a, b) => setRange(zoomTo(a, b, Date.now())),
      onPan: (deltaMs, from, to) => setRange(panRange({ kind: 'absolute', from, to }, deltaMs / Math.max(1, to - from), Date.now())),
      onBackToLive: backToLive,
      onOpenAnnotation,
      exportHref: (format, metrics, from, to, points) => {
        const q = new URLSearchParams({ metrics: metrics.join(','), from: String(from / 1000), to: String(to / 1000), format });
        if (points) q.set('max_points', String(points));
        if (host) q.set('host', host);
        return `/api/export?${q.toString().replace(/%2C/g, ',')}`;
      },
    }),
    [span, host, maxPoints, loadHistory, crosshair, annotations, setRange, backToLive, onOpenAnnotation],
  );
  return { explore, opened, closeNote: useCallback(() => setOpened(null), []) };
}

export default function Dashboard({ auth, theme }: DashboardProps) {
  const view = useViewState();
  const { range, lastLive } = view;
  // The live buffer covers the live range (at most MAX_WINDOW_MS) and keeps
  // filling while a past range is shown, so "Back to live" has no gap.
  const liveSpan = range.kind === 'live' ? range.spanMs : lastLive.spanMs;
  const windowMs = Math.min(liveSpan, MAX_WINDOW_MS);
  const stream = useDashboardStream(auth, { windowMs, host: view.host, groups: view.groups });
  const { ws, ack, connected, store, notes } = stream;

  const [networkUnit, setNetworkUnit] = useState(() => readPreference(NETWORK_UNIT_KEY, (v) => (v === 'bits' ? 'bits' : 'bytes'), 'bytes'));
  const [adminView, setAdminView] = useState(false);
  const [controlsOpen, setControlsOpen] = useState(false);
  // A click on the CPU or memory chart: the processes at that moment.
  const [lookBackAt, setLookBackAt] = useState<number | null>(null);

  const now = useNow(CLOCK_TICK_MS);
  const refreshMs = range.kind === 'live' ? Math.min(HISTORY_REFRESH_MAX_MS, Math.max(HISTORY_REFRESH_MIN_MS, range.spanMs / 1000)) : HISTORY_REFRESH_MAX_MS;
  const historyNow = useNow(refreshMs);
  const span = useMemo(() => historySpan(range, historyNow), [range, historyNow]);
  const { explore, opened, closeNote } = useExplorer(stream, view, span);

  const session = auth.session;
  const role = ack?.role || session?.role || 'viewer';
  const shownHost = view.host ?? ack?.host ?? null;

  const onWindow = (id: string) => {
    const next = liveRange(id);
    if (next) view.setRange(next);
  };
  const onNetworkUnit = (unit: string) => {
    setNetworkUnit(unit === 'bits' ? 'bits' : 'bytes');
    writePreference(NETWORK_UNIT_KEY, unit);
  };
  const onHost = (name: string) => view.setHost(name === ack?.host ? null : name);

  // -- derived view ------------------------------------------------------------

  const catalogue = ack?.metrics;
  const units = useMemo(() => {
    const u: Record<string, string> = { ...DEFAULT_UNITS };
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
  const disconnected = !connected && Boolean(ws.disconnectedSince) && ws.status !== STATUS.UNAUTHORIZED;
  const canAck = roleAtLeast(role, 'operator');
  const isAdmin = roleAtLeast(role, 'admin');
  const paused = stream.paused;
  const panelContext: PanelContext = { send: ws.send, connected, host: shownHost, range, span, theme: theme.resolved };

  return (
    <div className={`app${disconnected ? ' is-disconnected' : ''}${adminView ? ' is-admin-view' : ''}`}>
      <a className="skip-link" href="#main">Skip to the dashboard</a>
      <DashboardHeader
        host={shownHost}
        ws={ws}
        unread={notes.unread}
        isAdmin={isAdmin}
        adminView={adminView}
        onAdminView={() => setAdminView((v) => !v)}
        controlsOpen={controlsOpen}
        onControls={() => setControlsOpen((o) => !o)}
        username={session?.username}
        role={role}
        onLogout={auth.logout}
      />

      <ControlPanel
        id="controls"
        open={controlsOpen}
        windowId={range.kind === 'live' ? range.id : ''}
        onWindow={onWindow}
        paused={paused}
        onPause={stream.togglePause}
        bufferedWhilePaused={stream.bufferedWhilePaused}
        rateId={stream.rateId}
        onRate={stream.setRate}
        effectiveHz={connected ? stream.effectiveHz : null}
        receivedHz={connected ? ws.updatesPerSecond : null}
        groups={view.groups}
        onToggleGroup={view.toggleGroup}
        theme={theme.preference}
        onTheme={theme.setPreference}
        hosts={stream.hosts}
        host={shownHost ?? ''}
        onHost={onHost}
        disabled={!connected}
        networkUnit={networkUnit}
        onNetworkUnit={onNetworkUnit}
      />

      {disconnected && ws.disconnectedSince !== null ? <DisconnectedBanner since={ws.disconnectedSince} status={ws.status} onRetry={ws.reconnect} /> : null}

      {stream.banner ? (
        <div className={`banner banner-${stream.banner.level}`} role="status">
          <span>{stream.banner.text}</span>
          <button type="button" className="icon-btn" onClick={stream.dismissBanner} aria-label="Dismiss">
            ×
          </button>
        </div>
      ) : null}
      {view.notices.length ? (
        <div className="banner banner-warning" role="status" data-testid="link-notices">
          <span>{view.notices.join(' ')}</span>
          <button type="button" className="icon-btn" onClick={view.dismissNotices} aria-label="Dismiss">
            ×
          </button>
        </div>
      ) : null}

      <div className="layout">
        <main id="main" className="main" tabIndex={-1}>
          <HostsOverview series={stream.hostSeries} hosts={stream.hosts} current={shownHost} onSelect={onHost} />
          <MetricTiles store={store} units={units} cores={cores} groups={view.groups} available={available} paused={paused} theme={theme.resolved} gapMs={stream.gapMs} />
          <TimeRangeBar
            range={range}
            now={now}
            onApply={(from, to) => view.setRange({ kind: 'absolute', from, to })}
            onPan={(fraction) => view.setRange(panRange(range, fraction, Date.now()))}
            onZoomOut={() => view.setRange(zoomOut(range, 2, Date.now()))}
            onBackToLive={view.backToLive}
          />
          <section className="charts" aria-label="Charts">
            {charts
              .filter((c) => view.groups.includes(CHART_GROUP_OF[c.id]))
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
                  registry={stream.chartRegistry as Map<string, unknown>}
                  gapMs={stream.gapMs}
                  outages={stream.outages}
                  explore={explore}
                  onPointClick={c.id === 'cpu' || c.id === 'memory' ? setLookBackAt : undefined}
                />
              ))}
          </section>
          <HostDetails
            store={store}
            feed={stream.hostFeed}
            send={stream.sendLimited}
            ack={ack as HostAckData | null}
            connected={connected}
            role={role}
            host={shownHost}
            windowMs={windowMs}
            paused={paused}
            theme={theme.resolved}
            gapMs={stream.gapMs}
            onLookBack={setLookBackAt}
          />
          {lookBackAt !== null ? <ProcessesAtDialog time={lookBackAt} send={ws.send} host={shownHost} onClose={() => setLookBackAt(null)} /> : null}
          {DASHBOARD_PANELS.map((p) => (
            <Fragment key={p.id}>{p.render(panelContext)}</Fragment>
          ))}
          <div className="admin-area">
            {isAdmin ? <AdminPanel send={ws.send} connected={connected} metricNames={names} /> : null}
            {session ? <AlertingPanel getToken={auth.getToken} role={role} /> : null}
          </div>
        </main>
        <aside className="side" aria-label="Alerts and notifications">
          <ActiveAlerts alerts={notes.alerts} canAck={canAck} onAck={notes.ack} pendingAcks={notes.pendingAcks} now={now} />
          <NotificationsPanel
            items={notes.items}
            unread={notes.unread}
            activeIds={notes.activeIds}
            unacknowledged={notes.unacknowledged}
            canAck={canAck}
            onAck={notes.ack}
            onRead={notes.markRead}
            pendingAcks={notes.pendingAcks}
            now={now}
          />
        </aside>
      </div>
      <Toasts toasts={stream.toasts} onDismiss={stream.dismissToast} onAck={canAck ? notes.ack : null} />
      {opened ? <NotificationDialog note={opened} onClose={closeNote} /> : null}
    </div>
  );
}
