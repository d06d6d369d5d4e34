// The one owner of the dashboard's WebSocket.
//
// `useWebSocket(url, options)` opens the socket, authenticates with an `auth`
// message, keeps it alive with application pings (round-trip latency), counts
// messages per second, reconnects with capped exponential back-off and jitter,
// resumes from the last stream `seq` after a reconnect (re-ordering and
// de-duplicating the replay), refreshes the token on `token_expiring` or a
// 4001 close, and tracks the browser's online/offline events.
//
// Reconnecting is fast while someone looks (issue 16 item 5): the back-off
// is capped at RECONNECT_VISIBLE_MAX_MS while the tab is visible (30 s when
// hidden), an `online`, `focus` or `visibilitychange` to visible retries at
// once, and between attempts a cheap GET /api/health every HEALTH_PROBE_MS
// retries the moment the daemon answers. `disconnectedSince` in the view says
// since when the page has had no connection.
//
// Incoming messages never touch React state one by one: stream messages are
// buffered in the connection object and handed to `options.onMessages(batch)`
// at most once per animation frame (or once per second while the tab is
// hidden and animation frames stop). React state only holds the low-rate
// connection view (status, attempt, latency, rate, ack).
//
// Options live in a ref so the socket effect depends only on the URL.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import {
  RECONNECT_MAX_MS,
  SECOND_MS,
  backoffDelay,
  isStreamMessage,
  parseMessage,
} from '../services/dashboardService.js';

export const CONNECT_TIMEOUT_MS = 10 * SECOND_MS;
export const PING_INTERVAL_MS = 5 * SECOND_MS;
export const PONG_TIMEOUT_MS = 10 * SECOND_MS;
export const STATS_INTERVAL_MS = 1 * SECOND_MS;
export const REQUEST_TIMEOUT_MS = 15 * SECOND_MS;
export const RESUME_TIMEOUT_MS = 20 * SECOND_MS;
/** Flush fallback while requestAnimationFrame is paused (hidden tab). */
export const FLUSH_FALLBACK_MS = 1 * SECOND_MS;
/** Back-off cap while the tab is visible (hidden tabs keep RECONNECT_MAX_MS). */
export const RECONNECT_VISIBLE_MAX_MS = 3 * SECOND_MS;
/** Between attempts, probe the daemon's health this often. */
export const HEALTH_PROBE_MS = 500;
export const HEALTH_PATH = '/api/health';
/** The status pill's updates/s counts live metrics updates over this window. */
export const RATE_WINDOW_MS = 10 * SECOND_MS;
/** Consecutive 4001 closes, each after a token refresh, before giving up. */
export const MAX_AUTH_RETRIES = 2;

/** Close code for a socket we drop ourselves because pongs stopped. */
export const CLOSE_PING_TIMEOUT = 4000;
export const CLOSE_UNAUTHORIZED = 4001;

const WS_OPEN = 1;

export const STATUS = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  CONNECTED: 'connected',
  RECONNECTING: 'reconnecting',
  OFFLINE: 'offline',
  UNAUTHORIZED: 'unauthorized',
});

/** An `error` reply to a request. */
export class ProtocolError extends Error {
  constructor(data) {
    super(data?.message || data?.code || 'error');
    this.name = 'ProtocolError';
    this.code = data?.code || 'error';
    this.details = data?.details;
  }
}

const INITIAL_VIEW = Object.freeze({
  status: STATUS.IDLE,
  attempt: 0,
  retryAt: null,
  latencyMs: null,
  messagesPerSecond: 0,
  ack: null,
  lastError: null,
  closeCode: null,
  disconnectedSince: null,
  updatesPerSecond: 0,
});

/** rAF with a timer fallback: whichever fires first runs `cb`, once. */
export function scheduleAnimationFrame(cb) {
  let done = false;
  let raf = 0;
  const run = () => {
    if (done) return;
    done = true;
    if (raf && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(raf);
    clearTimeout(timer);
    cb();
  };
  const timer = setTimeout(run, FLUSH_FALLBACK_MS);
  if (typeof requestAnimationFrame === 'function') raf = requestAnimationFrame(run);
  return () => {
    done = true;
    if (raf && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(raf);
    clearTimeout(timer);
  };
}

function isOffline() {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

function isVisible() {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}

/**
 * The connection state machine. Plain JS so that its timers and listeners are
 * all owned in one place and released by `stop()`; the hook below only
 * creates it per URL and mirrors its view into React state.
 */
export class DashboardConnection {
  constructor(url, optionsRef, onView) {
    this.url = url;
    this.optionsRef = optionsRef;
    this.onView = onView;
    this.view = { ...INITIAL_VIEW };
    this.ws = null;
    this.stopped = false;
    this.lastSeq = null;
    this.pending = new Map();
    this.nextId = 1;
    this.buffer = [];
    this.cancelFlush = null;
    this.resuming = false;
    this.resumeBuffer = [];
    this.authFailures = 0;
    this.refreshing = false;
    this.timers = { retry: null, connect: null, ping: null, stats: null, resume: null, probe: null };
    this.probing = false;
    this.updateTimes = [];
    this.ping = null; // {id, sentAt}
    this.msgCount = 0;
    this.statsSince = 0;
    this.onOnline = () => this.handleOnline();
    this.onOffline = () => this.handleOffline();
    this.onAttention = () => this.handleAttention();
  }

  get options() {
    return this.optionsRef.current || {};
  }

  setView(patch) {
    let changed = false;
    for (const [k, v] of Object.entries(patch)) {
      if (this.view[k] !== v) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    this.view = { ...this.view, ...patch };
    this.onView(this.view);
  }

  start() {
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.onOnline);
      window.addEventListener('offline', this.onOffline);
      window.addEventListener('focus', this.onAttention);
    }
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.onAttention);
    if (isOffline()) this.setView({ status: STATUS.OFFLINE });
    else this.connect();
  }

  stop() {
    this.stopped = true;
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.onOnline);
      window.removeEventListener('offline', this.onOffline);
      window.removeEventListener('focus', this.onAttention);
    }
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.onAttention);
    this.clearTimers(true);
    this.rejectPending(new Error('connection stopped'));
    if (this.cancelFlush) this.cancelFlush();
    this.cancelFlush = null;
    this.buffer = [];
    this.dropSocket(1000, 'client stopped');
  }

  clearTimers(all) {
    for (const key of Object.keys(this.timers)) {
      if (!all && (key === 'retry' || key === 'probe')) continue;
      if (this.timers[key] !== null) {
        clearTimeout(this.timers[key]);
        clearInterval(this.timers[key]);
        this.timers[key] = null;
      }
    }
  }

  rejectPending(err) {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Detach and close the current socket without running our close handler. */
  dropSocket(code, reason) {
    const ws = this.ws;
    this.ws = null;
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    try {
      ws.close(code, reason);
    } catch {
      // Closing a socket that is still CONNECTING may throw in old browsers.
    }
  }

  // -- connecting ---------------------------------------------------------

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timers.retry);
    this.timers.retry = null;
    this.stopProbe();
    this.dropSocket(1000, 'reconnecting');
    const token = this.options.getToken ? this.options.getToken() : null;
    if (!token) {
      this.setView({ status: STATUS.UNAUTHORIZED, retryAt: null });
      return;
    }
    const WS = this.options.WebSocket || globalThis.WebSocket;
    let ws;
    try {
      ws = new WS(this.url);
    } catch (err) {
      this.setView({ lastError: { code: 'connect_failed', message: String(err) } });
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.setView({
      status: this.view.attempt > 0 ? STATUS.RECONNECTING : STATUS.CONNECTING,
      retryAt: null,
    });
    ws.onopen = () => {
      if (this.ws === ws) this.handleOpen(token);
    };
    ws.onmessage = (ev) => {
      if (this.ws === ws) this.handleMessage(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.ws === ws) this.handleClose(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // Always followed by a close event, which does the work.
    };
    this.timers.connect = setTimeout(() => {
      if (this.ws !== ws) return;
      this.setView({ lastError: { code: 'timeout', message: 'no connection_ack in time' } });
      this.dropSocket(1000, 'connect timeout');
      this.handleClose(1006, 'connect timeout');
    }, CONNECT_TIMEOUT_MS);
  }

  handleOpen(token) {
    const data = { token };
    if (this.lastSeq !== null) {
      data.resume_after_seq = this.lastSeq;
      this.resuming = true;
      this.resumeBuffer = [];
    }
    this.rawSend({ type: 'auth', data, correlation_id: `auth-${this.nextId++}` });
  }

  handleAck(msg) {
    clearTimeout(this.timers.connect);
    this.timers.connect = null;
    const ack = msg.data || {};
    let seqReset = false;
    if (this.lastSeq !== null && Number.isFinite(ack.seq) && ack.seq < this.lastSeq) {
      // The daemon's stream restarted from scratch (new store): nothing to
      // resume, and older seqs must not filter out the new stream.
      seqReset = true;
      this.lastSeq = null;
      this.resuming = false;
      const early = this.resumeBuffer;
      this.resumeBuffer = [];
      early.sort((a, b) => a.seq - b.seq);
      for (const m of early) this.deliverStream(m);
      this.enqueue({ type: 'seq_reset', data: { seq: ack.seq } });
    }
    const resumed = this.resuming;
    if (resumed) {
      this.timers.resume = setTimeout(() => this.finishResume(null), RESUME_TIMEOUT_MS);
    }
    this.authFailures = 0;
    this.setView({
      status: STATUS.CONNECTED,
      attempt: 0,
      retryAt: null,
      ack,
      lastError: null,
      closeCode: null,
      disconnectedSince: null,
    });
    this.startKeepAlive();
    try {
      this.options.onConnected?.(ack, { resumed, seqReset });
    } catch (err) {
      console.error('dashd: onConnected failed', err);
    }
  }

  // -- incoming -----------------------------------------------------------

  handleMessage(text) {
    const msg = parseMessage(text);
    if (!msg) return;
    this.msgCount += 1;
    const id = msg.correlation_id;

    if (msg.type === 'connection_ack') {
      this.handleAck(msg);
      return;
    }
    if (msg.type === 'pong') {
      if (this.ping && id === this.ping.id) {
        this.setView({ latencyMs: Math.max(0, Date.now() - this.ping.sentAt) });
        this.ping = null;
      }
      if (id && this.pending.has(id)) this.settle(id, msg);
      return;
    }
    if (msg.type === 'resume' && this.resuming && !(id && this.pending.has(id))) {
      this.finishResume(msg.data);
      return;
    }
    if (isStreamMessage(msg)) {
      if (this.resuming) this.resumeBuffer.push(msg);
      else this.deliverStream(msg);
      return;
    }
    if (msg.type === 'resume_gap') {
      this.enqueue(msg);
      return;
    }
    if (id && this.pending.has(id)) {
      this.settle(id, msg);
      return;
    }
    switch (msg.type) {
      case 'token_expiring':
        this.handleTokenExpiring();
        this.enqueue(msg);
        return;
      case 'error':
        this.setView({ lastError: msg.data });
        this.enqueue(msg);
        return;
      default:
        // stream_degraded, replies to requests that already timed out, and
        // future push types: let the dashboard decide.
        this.enqueue(msg);
    }
  }

  deliverStream(msg, live = true) {
    if (this.lastSeq !== null && msg.seq <= this.lastSeq) return; // duplicate from a replay
    this.lastSeq = msg.seq;
    if (live && msg.type === 'metrics_update') this.updateTimes.push(Date.now());
    this.enqueue(msg);
  }

  finishResume(result) {
    if (!this.resuming) return;
    this.resuming = false;
    clearTimeout(this.timers.resume);
    this.timers.resume = null;
    // Replayed messages and any live ones that raced them, in seq order,
    // duplicates dropped: the charts see one gap-free sequence.
    const msgs = this.resumeBuffer;
    this.resumeBuffer = [];
    msgs.sort((a, b) => a.seq - b.seq);
    for (const m of msgs) this.deliverStream(m, false); // a replay burst is not the live rate
    this.enqueue({ type: 'resume', data: result || { timeout: true } });
  }

  settle(id, msg) {
    const p = this.pending.get(id);
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (msg.type === 'error') p.reject(new ProtocolError(msg.data));
    else p.resolve(msg.data);
  }

  enqueue(msg) {
    this.buffer.push(msg);
    if (this.cancelFlush) return;
    const schedule = this.options.scheduleFrame || scheduleAnimationFrame;
    this.cancelFlush = schedule(() => this.flush());
  }

  flush() {
    this.cancelFlush = null;
    if (this.stopped || !this.buffer.length) return;
    const batch = this.buffer;
    this.buffer = [];
    try {
      this.options.onMessages?.(batch);
    } catch (err) {
      console.error('dashd: onMessages failed', err);
    }
  }

  // -- keep-alive and stats -------------------------------------------------

  startKeepAlive() {
    clearInterval(this.timers.ping);
    clearInterval(this.timers.stats);
    this.ping = null;
    this.msgCount = 0;
    this.updateTimes = [];
    this.connectedAt = Date.now();
    this.statsSince = Date.now();
    this.sendPing();
    this.timers.ping = setInterval(() => this.sendPing(), PING_INTERVAL_MS);
    this.timers.stats = setInterval(() => this.updateStats(), STATS_INTERVAL_MS);
  }

  sendPing() {
    if (this.ping && Date.now() - this.ping.sentAt >= PONG_TIMEOUT_MS) {
      // The peer stopped answering: a half-open TCP connection can take
      // minutes to close by itself, so drop it and reconnect now.
      this.setView({ lastError: { code: 'timeout', message: 'no pong in time' } });
      this.dropSocket(CLOSE_PING_TIMEOUT, 'ping timeout');
      this.handleClose(1006, 'ping timeout');
      return;
    }
    if (this.ping) return; // one outstanding ping at a time
    const id = `p${this.nextId++}`;
    this.ping = { id, sentAt: Date.now() };
    this.rawSend({ type: 'ping', data: { client_time: this.ping.sentAt }, correlation_id: id });
  }

  updateStats() {
    const now = Date.now();
    const elapsed = Math.max(1, now - this.statsSince);
    const rate = Math.round((this.msgCount * SECOND_MS * 10) / elapsed) / 10;
    // What actually arrives: live metrics updates per second over the last
    // RATE_WINDOW_MS (a 0.4/s stream reads 0.4, not 0 or 1; replays excluded).
    const since = now - RATE_WINDOW_MS;
    while (this.updateTimes.length && this.updateTimes[0] < since) this.updateTimes.shift();
    const span = Math.max(SECOND_MS, Math.min(RATE_WINDOW_MS, now - (this.connectedAt ?? now)));
    const updates = Math.round(((this.updateTimes.length * SECOND_MS) / span) * 100) / 100;
    this.msgCount = 0;
    this.statsSince = now;
    this.setView({ messagesPerSecond: rate, updatesPerSecond: updates });
  }

  // -- closing and reconnecting ---------------------------------------------

  handleClose(code, reason) {
    this.ws = null;
    this.clearTimers(false);
    this.ping = null;
    this.rejectPending(new Error(`connection closed (${code})`));
    // A replay cut short is discarded: lastSeq did not advance, so the next
    // resume asks for the same messages again.
    this.resuming = false;
    this.resumeBuffer = [];
    if (this.stopped) return;
    this.setView({
      closeCode: code,
      messagesPerSecond: 0,
      updatesPerSecond: 0,
      latencyMs: null,
      disconnectedSince: this.view.disconnectedSince ?? Date.now(),
    });
    if (code === CLOSE_UNAUTHORIZED) {
      this.handleUnauthorized();
    } else if (isOffline()) {
      this.setView({ status: STATUS.OFFLINE, retryAt: null });
    } else {
      this.scheduleReconnect(reason);
    }
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.timers.retry);
    const attempt = this.view.attempt + 1;
    const maxMs = isVisible() ? RECONNECT_VISIBLE_MAX_MS : RECONNECT_MAX_MS;
    const delay = backoffDelay(attempt, { random: this.options.random || Math.random, maxMs });
    this.setView({ status: STATUS.RECONNECTING, attempt, retryAt: Date.now() + delay });
    this.timers.retry = setTimeout(() => {
      this.timers.retry = null;
      this.connect();
    }, delay);
    this.startProbe();
  }

  /** While waiting to retry, ask /api/health; the first answer retries at once. */
  startProbe() {
    const fetchFn = this.options.fetch || (typeof fetch === 'function' ? fetch : null);
    if (!fetchFn || this.timers.probe !== null) return;
    const url = this.options.healthUrl || HEALTH_PATH;
    const tick = async () => {
      this.timers.probe = null;
      if (this.stopped || this.view.status !== STATUS.RECONNECTING || this.timers.retry === null) return;
      if (!this.probing) {
        this.probing = true;
        let ok = false;
        try {
          const res = await fetchFn(url, { cache: 'no-store', credentials: 'same-origin' });
          ok = Boolean(res && res.ok);
        } catch {
          ok = false;
        } finally {
          this.probing = false;
        }
        if (ok && !this.stopped && this.view.status === STATUS.RECONNECTING && this.timers.retry !== null) {
          this.connect();
          return;
        }
      }
      if (!this.stopped && this.timers.retry !== null) this.timers.probe = setTimeout(tick, HEALTH_PROBE_MS);
    };
    this.timers.probe = setTimeout(tick, HEALTH_PROBE_MS);
  }

  stopProbe() {
    clearTimeout(this.timers.probe);
    this.timers.probe = null;
  }

  /** Focus, or the tab becoming visible: someone looks, so retry now. */
  handleAttention() {
    if (this.stopped || !isVisible()) return;
    if (this.view.status === STATUS.RECONNECTING && this.timers.retry !== null) this.connect();
  }

  async handleUnauthorized() {
    this.authFailures += 1;
    const refresh = this.options.refreshToken;
    if (!refresh || this.authFailures > MAX_AUTH_RETRIES) {
      this.giveUpAuth();
      return;
    }
    this.setView({ status: STATUS.CONNECTING, retryAt: null });
    let token = null;
    try {
      token = await refresh();
    } catch {
      token = null;
    }
    if (this.stopped) return;
    if (token) this.connect();
    else this.giveUpAuth();
  }

  giveUpAuth() {
    this.setView({ status: STATUS.UNAUTHORIZED, retryAt: null, attempt: 0 });
    try {
      this.options.onUnauthorized?.();
    } catch (err) {
      console.error('dashd: onUnauthorized failed', err);
    }
  }

  async handleTokenExpiring() {
    if (this.refreshing || !this.options.refreshToken) return;
    this.refreshing = true;
    try {
      const token = await this.options.refreshToken();
      if (token && this.view.status === STATUS.CONNECTED) {
        const reply = await this.request('auth', { token });
        if (reply && this.view.ack) {
          this.setView({ ack: { ...this.view.ack, role: reply.role ?? this.view.ack.role, token_expires_at: reply.expires_at } });
        }
      }
    } catch (err) {
      // The server closes with 4001 at expiry; handleUnauthorized takes over.
      this.setView({ lastError: { code: 'refresh_failed', message: String(err?.message || err) } });
    } finally {
      this.refreshing = false;
    }
  }

  handleOnline() {
    if (this.stopped) return;
    if (this.view.status === STATUS.OFFLINE || this.view.status === STATUS.RECONNECTING) {
      this.setView({ attempt: 0 });
      this.connect();
    }
  }

  handleOffline() {
    if (this.stopped) return;
    clearTimeout(this.timers.retry);
    this.timers.retry = null;
    this.stopProbe();
    if (this.ws) {
      this.dropSocket(1000, 'browser offline');
      this.handleClose(1006, 'browser offline');
    }
    this.setView({ status: STATUS.OFFLINE, retryAt: null });
  }

  /** Retry at once (the "retry now" button, a fresh login after 4001). */
  reconnectNow() {
    if (this.stopped || this.view.status === STATUS.CONNECTED) return;
    this.authFailures = 0;
    this.connect();
  }

  // -- outgoing -----------------------------------------------------------

  rawSend(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Send a request; resolves with the reply's `data`, rejects on `error`. */
  request(type, data = {}, { timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    if (this.view.status !== STATUS.CONNECTED || !this.ws) {
      return Promise.reject(new Error('not connected'));
    }
    const id = `c${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${type}: no reply in time`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, type });
      if (!this.rawSend({ type, data, correlation_id: id })) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new Error('not connected'));
      }
    });
  }
}

/**
 * React binding: one DashboardConnection per URL (null = disconnected).
 *
 * options: {getToken, refreshToken, onMessages, onConnected, onUnauthorized,
 *           WebSocket?, scheduleFrame?, random?}
 */
export function useWebSocket(url, options = {}) {
  const optionsRef = useRef(options);
  useLayoutEffect(() => {
    optionsRef.current = options;
  });
  const [view, setView] = useState(INITIAL_VIEW);
  const connRef = useRef(null);

  useEffect(() => {
    if (!url) {
      setView(INITIAL_VIEW);
      return undefined;
    }
    const conn = new DashboardConnection(url, optionsRef, setView);
    connRef.current = conn;
    conn.start();
    return () => {
      conn.stop();
      if (connRef.current === conn) connRef.current = null;
    };
  }, [url]);

  const send = useCallback((type, data, opts) => {
    const conn = connRef.current;
    return conn ? conn.request(type, data, opts) : Promise.reject(new Error('not connected'));
  }, []);
  const reconnect = useCallback(() => connRef.current?.reconnectNow(), []);
  const lastSeq = useCallback(() => connRef.current?.lastSeq ?? null, []);

  return useMemo(() => ({ ...view, send, reconnect, lastSeq }), [view, send, reconnect, lastSeq]);
}

/** ws:// or wss:// URL for an endpoint path on the page's own origin. */
export function endpointUrl(path, loc = typeof window !== 'undefined' ? window.location : null) {
  if (!loc) return null;
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${path}`;
}
