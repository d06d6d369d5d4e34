// The dashboard's stream, out of the Dashboard component: the one socket
// (useWebSocket), the live series store, the requests the page makes
// (`subscribe`, `set_rate`, `history`), notifications and toasts, hosts seen,
// the hidden-tab throttle and the diagnostics (`window.__dashd`).
//
// Data flow: useWebSocket buffers stream messages and calls handleBatch at
// most once per animation frame; handleBatch applies the batch to the series
// store (outside React), then store.notify() lets every chart redraw in place.
// What the user chose (window, host, metric groups) comes in as arguments;
// the callbacks that run on socket events read it through one ref, written in
// one place (a layout effect).

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { useNotificationState, type NotificationState } from './useNotificationState';
import { STATUS, endpointUrl, useWebSocket, type WebSocketHandle } from './useWebSocket';
import { AUTH, type Auth } from './useAuth';
import { createHostsSeries } from '../components/HostsOverview';
import { createHostFeed, hostSubscription } from '../components/host/HostDetails';
import type { HostFeed } from '../services/hostFeed';
import type { HostAckData, SendRequest } from '../protocol/hostTypes';
import { MAX_TOASTS } from '../components/Toasts';
import { createOutageLog, expectedStepMs, maxGapFor, type OutageLog } from '../services/gaps';
import { createSeriesStore, type SeriesStore } from '../services/seriesStore';
import { createFrameProfiler, type FrameProfiler } from '../services/frameProfiler';
import { createRequestLimiter } from '../services/requestLimiter';
import { historyToBands, historyToSeries, toEpochMs, toSample, type HistoryBands } from '../protocol/parse';
import type { ConnectionAckData, Envelope, NotificationAckData, NotificationData, ResumeGapData } from '../protocol/types';
import { CHART_GROUPS, expandMetrics } from '../services/chartGroups';
import { HOUR_MS, MAX_WINDOW_MS, METRIC_GROUPS, MINUTE_MS, RATE_CHOICES, SECOND_MS, TILE_METRICS, subscriptionFor } from '../services/constants';
import { createDiagnostics, installDiagnostics, type DiagnosticsChart } from '../diagnostics/dashdDiagnostics';

/** Points asked per series when filling the live window from `history`. */
export const HISTORY_MAX_POINTS = 1000;
/** dashd answers at most this many `history`/`stats` of one connection at a time (docs/security.md). */
export const HISTORY_IN_FLIGHT = 2;
/** A query the store was too busy for is retried this many times, after its `retry_after`. */
const BUSY_RETRIES = 3;
const BUSY_RETRY_DEFAULT_MS = 500;
/** A hidden tab lowers its rate to this after HIDDEN_THROTTLE_AFTER_MS. */
export const HIDDEN_RATE_HZ = 0.2;
export const HIDDEN_THROTTLE_AFTER_MS = 30 * SECOND_MS;
/** Only critical notifications younger than this raise a toast (not old replays). */
export const TOAST_MAX_AGE_MS = 5 * MINUTE_MS;
/** A window counts as filled when data reaches this close to its left edge. */
const WINDOW_FILL_TOLERANCE_MS = 5 * SECOND_MS;

export const ALL_GROUPS: readonly string[] = METRIC_GROUPS.map((g) => g.id);
/** The metric group (subscription) each chart belongs to. */
export const CHART_GROUP_OF: Readonly<Record<string, string>> = { cpu: 'cpu', memory: 'memory', network: 'network', disk: 'disk', connections: 'system' };

export interface Toast {
  key: number;
  level: 'info' | 'warning' | 'critical';
  title: string;
  message?: string;
  notificationId?: string;
}

export interface Banner {
  level: 'info' | 'warning';
  text: string;
}

/** A request error as DashboardConnection rejects it (a typed `error` frame). */
interface RequestError {
  code?: string;
  message?: string;
  details?: { retry_after?: number };
}

export interface StreamSettings {
  /** The live window the store must cover (ms, at most MAX_WINDOW_MS). */
  windowMs: number;
  /** The host shown; null: the daemon's own. */
  host: string | null;
  /** Metric groups subscribed to. */
  groups: readonly string[];
}

export interface HistoryRequest {
  metrics: readonly string[];
  from: number;
  to: number;
  maxPoints: number;
  host: string | null;
}

export interface DashboardStream {
  ws: WebSocketHandle;
  ack: ConnectionAckData | null;
  connected: boolean;
  store: SeriesStore;
  profiler: FrameProfiler;
  outages: OutageLog;
  hostSeries: ReturnType<typeof createHostsSeries>;
  /** Host detail messages (`processes`) for the host panels. */
  hostFeed: HostFeed;
  chartRegistry: Map<string, DiagnosticsChart>;
  hosts: string[];
  paused: boolean;
  togglePause(): void;
  bufferedWhilePaused: number;
  rateId: string;
  setRate(id: string): void;
  effectiveHz: number | null;
  /** Longest gap drawn as a line (ms): a hole wider than this breaks it. */
  gapMs: number;
  notes: NotificationState;
  toasts: Toast[];
  dismissToast(key: number): void;
  banner: Banner | null;
  dismissBanner(): void;
  /** One `history` query (the explorer's charts); rejects with the server's error. */
  loadHistory(req: HistoryRequest): Promise<HistoryBands>;
  /** A request on the socket, with `history` through the same limiter as the charts' (at most
   * HISTORY_IN_FLIGHT at once, a refused one asked again): what the host panels send with. */
  sendLimited: SendRequest;
  /** Notifications stored between from and to (ms), newest first. */
  loadNotifications(from: number, to: number): Promise<NotificationData[]>;
}

/** The error a request gets while there is no socket (typed like the server's errors). */
function notConnected(): Error & { code: string } {
  return Object.assign(new Error('not connected'), { code: 'not_connected' });
}

function relativeSpan(ms: number): string {
  return ms >= HOUR_MS ? `-${ms / HOUR_MS}h` : `-${Math.round(ms / MINUTE_MS)}m`;
}

function asError(err: unknown): RequestError {
  return err && typeof err === 'object' ? (err as RequestError) : {};
}

/** The metrics the live charts and tiles of these groups draw (catalogue names when known). */
export function liveMetricsFor(groups: readonly string[], names: readonly string[]): string[] {
  const wanted = new Set<string>();
  for (const g of CHART_GROUPS) {
    if (!groups.includes(CHART_GROUP_OF[g.id])) continue;
    expandMetrics(g.metrics, names).forEach((n) => wanted.add(n));
  }
  for (const t of TILE_METRICS) if (groups.includes(t.group)) wanted.add(t.name);
  return names.length ? [...wanted].filter((n) => names.includes(n)) : [...wanted];
}

function useToasts() {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const toastKey = useRef(0);
  const pushToast = useCallback((toast: Omit<Toast, 'key'>) => {
    toastKey.current += 1;
    const key = toastKey.current;
    setToasts((ts) => [...ts, { ...toast, key }].slice(-MAX_TOASTS));
  }, []);
  const dismissToast = useCallback((key: number) => setToasts((ts) => ts.filter((t) => t.key !== key)), []);
  // Toasts follow acknowledgement: once anyone acknowledges, its toast goes.
  const dropToastsFor = useCallback((id: string) => setToasts((ts) => ts.filter((t) => t.notificationId !== id)), []);
  return { toasts, pushToast, dismissToast, dropToastsFor };
}

export function useDashboardStream(auth: Auth, { windowMs, host, groups }: StreamSettings): DashboardStream {
  const store = useMemo(() => createSeriesStore(), []);
  const profiler = useMemo(() => createFrameProfiler(), []);
  const chartRegistry = useMemo(() => new Map<string, DiagnosticsChart>(), []);
  // Spans where the daemon or the connection was down (shaded on the charts).
  const outages = useMemo(() => createOutageLog(), []);
  // CPU/memory of every host for the overview (small multiples).
  const hostSeries = useMemo(() => createHostsSeries(), []);
  const hostFeed = useMemo(() => createHostFeed(), []);

  const [paused, setPaused] = useState(false);
  const [bufferedWhilePaused, setBufferedWhilePaused] = useState(0);
  const [rateId, setRateId] = useState('live');
  const [effectiveHz, setEffectiveHz] = useState<number | null>(null);
  const [intervalS, setIntervalS] = useState<number | null>(null);
  const [hosts, setHosts] = useState<string[]>([]);
  const [banner, setBanner] = useState<Banner | null>(null);
  const { toasts, pushToast, dismissToast, dropToastsFor } = useToasts();

  // What the socket callbacks read; written only by the layout effect below.
  const settings = useRef({ windowMs, host, groups, paused, rateId });
  useLayoutEffect(() => {
    settings.current = { windowMs, host, groups, paused, rateId };
  });
  const knownHosts = useRef(new Set<string>());
  const sendRef = useRef<WebSocketHandle['send'] | null>(null);
  const ackRef = useRef<ConnectionAckData | null>(null);
  const hiddenThrottle = useRef<{ since: number } | null>(null);
  const pausedCount = useRef(0);

  const reportError = useCallback((title: string, message: string) => pushToast({ level: 'warning', title, message }), [pushToast]);
  const notes = useNotificationState({ sendRef, onAcknowledged: dropToastsFor, onError: reportError });

  const catalogueNames = useCallback(() => (ackRef.current?.metrics || []).map((m) => m.name), []);
  const historyLimiter = useMemo(() => createRequestLimiter(HISTORY_IN_FLIGHT), []);

  /** One `history` through the limiter; a busy store is asked again after its retry_after. */
  const requestHistory = useCallback(
    async (data: Record<string, unknown>): Promise<Record<string, unknown>> => {
      for (let attempt = 0; ; attempt += 1) {
        const send = sendRef.current;
        if (!send) throw notConnected();
        try {
          return await historyLimiter.run(() => send('history', data));
        } catch (err) {
          const e = asError(err);
          if (e.code !== 'rate_limited' || attempt >= BUSY_RETRIES) throw err;
          const after = e.details?.retry_after;
          await new Promise((resolve) => setTimeout(resolve, typeof after === 'number' ? after * 1000 : BUSY_RETRY_DEFAULT_MS));
        }
      }
    },
    [historyLimiter],
  );

  // -- requests ----------------------------------------------------------------

  const fillHistory = useCallback(
    async (range: { from: string; to?: string }, forHost: string | null = settings.current.host, forGroups: readonly string[] = settings.current.groups) => {
      const metrics = liveMetricsFor(forGroups, catalogueNames());
      if (!sendRef.current || !metrics.length) return;
      const limit = ackRef.current?.limits?.max_history_points ?? HISTORY_MAX_POINTS;
      const data: Record<string, unknown> = { metrics, from: range.from, max_points: Math.min(limit, HISTORY_MAX_POINTS) };
      if (range.to !== undefined) data.to = range.to;
      if (forHost) data.host = forHost;
      try {
        const reply = await requestHistory(data);
        if (settings.current.host !== forHost) return; // the user switched hosts meanwhile
        const { series, bucketMs } = historyToSeries(reply);
        store.mergeHistory(series, { bucketMs });
        store.trim();
        store.notify();
      } catch (err) {
        const e = asError(err);
        if (e.code) pushToast({ level: 'warning', title: 'History unavailable', message: e.message });
      }
    },
    [catalogueNames, store, pushToast, requestHistory],
  );

  const applyRate = useCallback(async (id: string) => {
    const send = sendRef.current;
    if (!send) return;
    const choice = RATE_CHOICES.find((r) => r.id === id) || RATE_CHOICES[0];
    const maxHz = choice.hz ?? ackRef.current?.limits?.max_rate_hz ?? 10;
    try {
      const reply = await send('set_rate', { max_hz: maxHz });
      const granted = reply.effective_hz ?? reply.max_hz;
      setEffectiveHz(typeof granted === 'number' ? granted : null);
    } catch {
      // Not connected: onConnected re-applies the rate.
    }
  }, []);

  const applySubscription = useCallback(
    async (selected: readonly string[]) => {
      const send = sendRef.current;
      if (!send) return;
      const names = catalogueNames();
      // The host panels' families stay subscribed whatever the chart groups.
      const hostPatterns = hostSubscription((ackRef.current as HostAckData | null)?.families);
      const patterns = selected.length === ALL_GROUPS.length
        ? ['*']
        : [...new Set([...subscriptionFor(selected).filter((p) => !names.length || names.some((n) => (p.endsWith('*') ? n.startsWith(p.slice(0, -1)) : n === p))), ...hostPatterns])];
      try {
        await send('unsubscribe', {});
        if (patterns.length) await send('subscribe', { metrics: patterns });
      } catch (err) {
        const e = asError(err);
        if (e.code) pushToast({ level: 'warning', title: 'Subscription failed', message: e.message });
      }
    },
    [catalogueNames, pushToast],
  );

  /**
   * Samples neither the replay ring nor the store could deliver: refill the
   * charts for that span from history. The gap arrives before the replayed
   * messages are applied, so when it carries no times, the newest sample we
   * hold marks its start and "now" its end; mergeHistory only fills buckets
   * that have no live point, so the overlap with the replay is harmless.
   */
  const refillGap = useCallback(
    (gap: ResumeGapData) => {
      const newest = store.newestTime();
      let from = toEpochMs(gap.from);
      const to = toEpochMs(gap.to);
      if (!Number.isFinite(from)) from = newest;
      const oldestUseful = (Number.isFinite(newest) ? newest : Date.now()) - MAX_WINDOW_MS;
      if (Number.isFinite(from) && !(Number.isFinite(to) && to < oldestUseful)) {
        const range: { from: string; to?: string } = { from: new Date(Math.max(from, oldestUseful)).toISOString() };
        if (Number.isFinite(to)) range.to = new Date(to).toISOString();
        fillHistory(range);
      }
      const count = Number.isFinite(gap.to_seq - gap.from_seq) ? gap.to_seq - gap.from_seq + 1 : null;
      setBanner({ level: 'info', text: `${count ? `${count} updates` : 'Some updates'} could not be replayed; the charts were refilled from history.` });
    },
    [store, fillHistory],
  );

  const noteHost = useCallback((name: string | null | undefined) => {
    if (!name || knownHosts.current.has(name)) return;
    knownHosts.current.add(name);
    setHosts([...knownHosts.current].sort());
  }, []);

  // -- the stream ----------------------------------------------------------------

  const { onAckMessage, onNotifications } = notes;
  const gapRef = useRef(0);

  const applySampleMessage = useCallback(
    (msg: Envelope): boolean => {
      const sample = toSample(msg);
      if (!sample) return false;
      noteHost(sample.host);
      hostSeries.add(sample);
      const shown = settings.current.host ?? ackRef.current?.host;
      if (sample.host && shown && sample.host !== shown) {
        store.noteSeq(sample.seq);
        return false;
      }
      // The first sample after a reconnect ends a known outage.
      if (outages.isOpen()) outages.close(sample.t, gapRef.current);
      store.appendSample(sample);
      return true;
    },
    [noteHost, hostSeries, store, outages],
  );

  const raiseToasts = useCallback(
    (fresh: NotificationData[]) => {
      const cutoff = Date.now() - TOAST_MAX_AGE_MS;
      for (const n of fresh) {
        if (n.level === 'critical' && !n.acknowledged_by && toEpochMs(n.timestamp) >= cutoff) {
          pushToast({ level: 'critical', title: n.title, message: n.message, notificationId: String(n.id) });
        }
      }
    },
    [pushToast],
  );

  const handleBatch = useCallback(
    (batch: Envelope[]) => {
      const start = profiler.now();
      const fresh: NotificationData[] = [];
      let samples = 0;
      for (const msg of batch) {
        const data = msg.data as Record<string, unknown>;
        switch (msg.type) {
          case 'metrics_update':
            if (applySampleMessage(msg)) samples += 1;
            break;
          case 'notification':
            store.noteSeq(msg.seq);
            fresh.push(data as unknown as NotificationData);
            break;
          case 'notification_ack':
            store.noteSeq(msg.seq);
            onAckMessage(data as unknown as NotificationAckData);
            break;
          case 'processes':
            hostFeed.push(msg);
            break;
          case 'resume_gap':
            refillGap(data as unknown as ResumeGapData);
            break;
          case 'stream_degraded':
            setBanner(data.reason === 'recovered' ? null : { level: 'warning', text: `Stream degraded (${String(data.reason)}); updates are being coalesced.` });
            break;
          case 'seq_reset':
            fillHistory({ from: relativeSpan(settings.current.windowMs) });
            break;
          case 'error':
            pushToast({ level: 'warning', title: `Server error: ${String(data.code)}`, message: String(data.message ?? '') });
            break;
          default:
            break;
        }
      }
      if (fresh.length) {
        onNotifications(fresh);
        raiseToasts(fresh);
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
    [store, profiler, fillHistory, refillGap, pushToast, applySampleMessage, raiseToasts, onAckMessage, onNotifications, hostFeed],
  );

  const loadNotes = notes.load;
  const onConnected = useCallback(
    (ack: ConnectionAckData, { resumed, seqReset }: { resumed: boolean; seqReset: boolean }) => {
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
      loadNotes();
      if (!resumed || seqReset) fillHistory({ from: relativeSpan(s.windowMs) });
    },
    [applyRate, applySubscription, fillHistory, loadNotes, noteHost],
  );

  const ws = useWebSocket(auth.session ? endpointUrl('/dashboard') : null, {
    getToken: auth.getToken,
    refreshToken: auth.refreshToken,
    onUnauthorized: auth.markExpired,
    onMessages: handleBatch,
    onConnected,
  } as Parameters<typeof useWebSocket>[1]);
  useLayoutEffect(() => {
    sendRef.current = ws.send;
  }, [ws.send]);

  const connected = ws.status === STATUS.CONNECTED;
  // A drop opens an outage at the newest sample held; the first sample after
  // the reconnect closes it (applySampleMessage).
  useEffect(() => {
    if (!connected && ws.disconnectedSince) outages.open(store.newestTime());
  }, [connected, ws.disconnectedSince, outages, store]);
  const throttledHz = rateId === 'live' ? null : RATE_CHOICES.find((r) => r.id === rateId)?.hz;
  const gapMs = maxGapFor(expectedStepMs({ intervalS, rateHz: throttledHz }));
  useLayoutEffect(() => {
    gapRef.current = gapMs;
  }, [gapMs]);

  // After a fresh sign-in over an expired session, reconnect (and resume).
  const signedIn = auth.status === AUTH.SIGNED_IN;
  const { reconnect, status } = ws;
  useEffect(() => {
    if (signedIn && status === STATUS.UNAUTHORIZED) reconnect();
  }, [signedIn, status, reconnect]);

  useHiddenTabThrottle({ store, sendRef, settings, hiddenThrottle, applyRate, fillHistory });

  // Diagnostics for tests and the frame-budget measurement (window.__dashd).
  const lastSeq = ws.lastSeq;
  useEffect(
    () => installDiagnostics(createDiagnostics({ store, profiler, charts: chartRegistry, lastSeq, ack: () => ackRef.current })),
    [store, profiler, chartRegistry, lastSeq],
  );

  // -- what the user chose, applied to the stream ------------------------------------

  // Another host: its samples replace the current ones.
  const shownHost = useRef(host);
  useEffect(() => {
    if (shownHost.current === host) return;
    shownHost.current = host;
    store.clear();
    store.notify();
    fillHistory({ from: relativeSpan(settings.current.windowMs) }, host);
  }, [host, store, fillHistory]);

  const groupsKey = groups.join(',');
  const subscribed = useRef(groupsKey);
  useEffect(() => {
    if (subscribed.current === groupsKey) return;
    subscribed.current = groupsKey;
    const next = groupsKey ? groupsKey.split(',') : [];
    applySubscription(next);
  }, [groupsKey, applySubscription]);

  // A longer window than the store holds: fill its left part from history.
  useEffect(() => {
    const newest = store.newestTime();
    const liveNames = liveMetricsFor(settings.current.groups, catalogueNames());
    if (!Number.isFinite(newest) || store.oldestTime(liveNames) > newest - windowMs + WINDOW_FILL_TOLERANCE_MS) {
      fillHistory({ from: relativeSpan(windowMs) });
    }
  }, [windowMs, store, catalogueNames, fillHistory]);

  const togglePause = useCallback(() => {
    setPaused((p) => {
      if (p) {
        pausedCount.current = 0;
        setBufferedWhilePaused(0);
      }
      return !p;
    });
  }, []);

  const setRate = useCallback(
    (id: string) => {
      setRateId(id);
      applyRate(id);
    },
    [applyRate],
  );

  const loadHistory = useCallback(async (req: HistoryRequest): Promise<HistoryBands> => {
    const data: Record<string, unknown> = {
      metrics: [...req.metrics],
      from: req.from / 1000,
      to: req.to / 1000,
      max_points: req.maxPoints,
    };
    if (req.host) data.host = req.host;
    return historyToBands(await requestHistory(data));
  }, [requestHistory]);

  const loadNotifications = useCallback(async (from: number, to: number): Promise<NotificationData[]> => {
    const send = sendRef.current;
    if (!send) return [];
    const reply = await send('notifications', { from: from / 1000, to: to / 1000, limit: 500 });
    return Array.isArray(reply.notifications) ? (reply.notifications as NotificationData[]) : [];
  }, []);

  const sendLimited = useCallback<SendRequest>(
    (type, data) => {
      if (type === 'history') return requestHistory({ ...(data as Record<string, unknown>) });
      const send = sendRef.current;
      return send ? send(type, data as Record<string, unknown>) : Promise.reject(notConnected());
    },
    [requestHistory],
  );

  const dismissBanner = useCallback(() => setBanner(null), []);

  return {
    ws,
    ack: ws.ack as ConnectionAckData | null,
    connected,
    store,
    profiler,
    outages,
    hostSeries,
    hostFeed,
    chartRegistry,
    hosts,
    paused,
    togglePause,
    bufferedWhilePaused,
    rateId,
    setRate,
    effectiveHz,
    gapMs,
    notes,
    toasts,
    dismissToast,
    banner,
    dismissBanner,
    loadHistory,
    loadNotifications,
    sendLimited,
  };
}

interface ThrottleDeps {
  store: SeriesStore;
  sendRef: { current: WebSocketHandle['send'] | null };
  settings: { current: { rateId: string } };
  hiddenThrottle: { current: { since: number } | null };
  applyRate: (id: string) => Promise<void>;
  fillHistory: (range: { from: string }) => Promise<void>;
}

/**
 * A hidden tab stops drawing (charts check document.hidden) and, after a
 * while, lowers its rate; on return it restores the rate and refills the
 * skipped span from history.
 */
function useHiddenTabThrottle({ store, sendRef, settings, hiddenThrottle, applyRate, fillHistory }: ThrottleDeps): void {
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onVisibility = () => {
      clearTimeout(timer);
      timer = undefined;
      if (document.hidden) {
        const since = store.newestTime();
        timer = setTimeout(() => {
          const current = RATE_CHOICES.find((r) => r.id === settings.current.rateId);
          if (current && current.hz !== null && current.hz <= HIDDEN_RATE_HZ) return;
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
  }, [store, sendRef, settings, hiddenThrottle, applyRate, fillHistory]);
}
