// Socket lifecycle of the dashboard's one WebSocket: connect, authenticate
// with an `auth` message, resume from the last stream `seq` after a reconnect
// (re-ordering and de-duplicating the replay), requests with correlation ids,
// token refresh on `token_expiring` or a 4001 close, and the browser's
// online/offline/focus events. The work it does not own is delegated the way
// react-use-websocket splits it: Heartbeat (pings, latency, rates),
// ReconnectPolicy (back-off, health probe) and MessageQueue (batched delivery
// once per animation frame).
import { isStreamMessage, parseMessage } from '../protocol/parse';
import type { ConnectionAckData, Envelope, ErrorData } from '../protocol/types';
import { SECOND_MS } from '../services/constants';
import { Heartbeat } from './heartbeat';
import { MessageQueue, type ScheduleFrame } from './messageQueue';
import { ReconnectPolicy, isVisible, type FetchLike } from './reconnectPolicy';

export const CONNECT_TIMEOUT_MS = 10 * SECOND_MS;
export const REQUEST_TIMEOUT_MS = 15 * SECOND_MS;
export const RESUME_TIMEOUT_MS = 20 * SECOND_MS;
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
} as const);
export type Status = (typeof STATUS)[keyof typeof STATUS];

/** An `error` reply to a request. */
export class ProtocolError extends Error {
  code: string;
  details: Record<string, unknown> | undefined;

  constructor(data: Partial<ErrorData> | null | undefined) {
    super(data?.message || data?.code || 'error');
    this.name = 'ProtocolError';
    this.code = data?.code || 'error';
    this.details = data?.details;
  }
}

export interface ConnectionError {
  code: string;
  message: string;
}

/** What the page shows about the connection (mirrored into React state). */
export interface ConnectionView {
  status: Status;
  attempt: number;
  retryAt: number | null;
  latencyMs: number | null;
  messagesPerSecond: number;
  ack: ConnectionAckData | null;
  lastError: ConnectionError | ErrorData | null;
  closeCode: number | null;
  disconnectedSince: number | null;
  updatesPerSecond: number;
}

export const INITIAL_VIEW: Readonly<ConnectionView> = Object.freeze({
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

/** A message handed to `onMessages`: a server message, or one the connection makes (`seq_reset`, `resume`). */
export type Delivered = Envelope;

export interface ConnectionOptions {
  getToken?: () => string | null;
  refreshToken?: () => Promise<string | null>;
  onMessages?: (batch: Delivered[]) => void;
  onConnected?: (ack: ConnectionAckData, info: { resumed: boolean; seqReset: boolean }) => void;
  onUnauthorized?: () => void;
  WebSocket?: typeof WebSocket;
  scheduleFrame?: ScheduleFrame;
  random?: () => number;
  fetch?: FetchLike;
  healthUrl?: string;
}

export interface RequestOptions {
  timeoutMs?: number;
}

interface Pending {
  resolve: (data: Record<string, unknown>) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
  type: string;
}

type StreamEnvelope = Envelope & { seq: number };

function isOffline(): boolean {
  return typeof navigator !== 'undefined' && navigator.onLine === false;
}

/**
 * The connection state machine. Plain TypeScript so that its timers and
 * listeners are all owned in one place and released by `stop()`; the hook
 * only creates it per URL and mirrors its view into React state.
 */
export class DashboardConnection {
  view: ConnectionView = { ...INITIAL_VIEW };
  lastSeq: number | null = null;
  private ws: WebSocket | null = null;
  private stopped = false;
  private pending = new Map<string, Pending>();
  private nextId = 1;
  private resuming = false;
  private resumeBuffer: StreamEnvelope[] = [];
  private authFailures = 0;
  private refreshing = false;
  private connectTimer: ReturnType<typeof setTimeout> | null = null;
  private resumeTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly queue: MessageQueue<Delivered>;
  private readonly heartbeat: Heartbeat;
  private readonly reconnect: ReconnectPolicy;
  private readonly onOnline = () => this.handleOnline();
  private readonly onOffline = () => this.handleOffline();
  private readonly onAttention = () => this.handleAttention();

  constructor(
    private readonly url: string,
    private readonly optionsRef: { current: ConnectionOptions | null | undefined },
    private readonly onView: (view: ConnectionView) => void,
  ) {
    this.queue = new MessageQueue<Delivered>(
      (batch) => {
        if (this.stopped) return;
        try {
          this.options.onMessages?.(batch);
        } catch (err) {
          console.error('dashd: onMessages failed', err);
        }
      },
      () => this.options.scheduleFrame,
    );
    this.heartbeat = new Heartbeat({
      nextId: () => `p${this.nextId++}`,
      sendPing: (id, sentAt) => {
        this.rawSend({ type: 'ping', data: { client_time: sentAt }, correlation_id: id });
      },
      onTimeout: () => {
        this.setView({ lastError: { code: 'timeout', message: 'no pong in time' } });
        this.dropSocket(CLOSE_PING_TIMEOUT, 'ping timeout');
        this.handleClose(1006, 'ping timeout');
      },
      onLatency: (ms) => this.setView({ latencyMs: ms }),
      onStats: (stats) => this.setView(stats),
    });
    this.reconnect = new ReconnectPolicy({
      retry: () => this.connect(),
      stillReconnecting: () => !this.stopped && this.view.status === STATUS.RECONNECTING,
      options: () => this.options,
    });
  }

  get options(): ConnectionOptions {
    return this.optionsRef.current || {};
  }

  private setView(patch: Partial<ConnectionView>): void {
    let changed = false;
    for (const [k, v] of Object.entries(patch)) {
      if (this.view[k as keyof ConnectionView] !== v) {
        changed = true;
        break;
      }
    }
    if (!changed) return;
    this.view = { ...this.view, ...patch };
    this.onView(this.view);
  }

  start(): void {
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.onOnline);
      window.addEventListener('offline', this.onOffline);
      window.addEventListener('focus', this.onAttention);
    }
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.onAttention);
    if (isOffline()) this.setView({ status: STATUS.OFFLINE });
    else this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.onOnline);
      window.removeEventListener('offline', this.onOffline);
      window.removeEventListener('focus', this.onAttention);
    }
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.onAttention);
    this.clearSessionTimers();
    this.reconnect.cancel();
    this.rejectPending(new Error('connection stopped'));
    this.queue.clear();
    this.dropSocket(1000, 'client stopped');
  }

  /** Timers of one socket's session (the reconnect policy keeps its own). */
  private clearSessionTimers(): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.connectTimer = null;
    this.resumeTimer = null;
    this.heartbeat.stop();
  }

  private rejectPending(err: Error): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  /** Detach and close the current socket without running our close handler. */
  private dropSocket(code: number, reason: string): void {
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

  private connect(): void {
    if (this.stopped) return;
    this.reconnect.cancel();
    this.dropSocket(1000, 'reconnecting');
    const token = this.options.getToken ? this.options.getToken() : null;
    if (!token) {
      this.setView({ status: STATUS.UNAUTHORIZED, retryAt: null });
      return;
    }
    const WS = this.options.WebSocket || globalThis.WebSocket;
    let ws: WebSocket;
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
    ws.onmessage = (ev: MessageEvent) => {
      if (this.ws === ws) this.handleMessage(ev.data);
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws === ws) this.handleClose(ev.code, ev.reason);
    };
    ws.onerror = () => {
      // Always followed by a close event, which does the work.
    };
    this.connectTimer = setTimeout(() => {
      if (this.ws !== ws) return;
      this.setView({ lastError: { code: 'timeout', message: 'no connection_ack in time' } });
      this.dropSocket(1000, 'connect timeout');
      this.handleClose(1006, 'connect timeout');
    }, CONNECT_TIMEOUT_MS);
  }

  private handleOpen(token: string): void {
    const data: { token: string; resume_after_seq?: number } = { token };
    if (this.lastSeq !== null) {
      data.resume_after_seq = this.lastSeq;
      this.resuming = true;
      this.resumeBuffer = [];
    }
    this.rawSend({ type: 'auth', data, correlation_id: `auth-${this.nextId++}` });
  }

  private handleAck(msg: Envelope): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    const ack = (msg.data || {}) as unknown as ConnectionAckData;
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
      this.queue.push({ type: 'seq_reset', data: { seq: ack.seq } });
    }
    const resumed = this.resuming;
    if (resumed) {
      this.resumeTimer = setTimeout(() => this.finishResume(null), RESUME_TIMEOUT_MS);
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
    this.heartbeat.start();
    try {
      this.options.onConnected?.(ack, { resumed, seqReset });
    } catch (err) {
      console.error('dashd: onConnected failed', err);
    }
  }

  // -- incoming -----------------------------------------------------------

  private handleMessage(text: unknown): void {
    const msg = parseMessage(text);
    if (!msg) return;
    this.heartbeat.countMessage();
    const id = msg.correlation_id;

    if (msg.type === 'connection_ack') {
      this.handleAck(msg);
      return;
    }
    if (msg.type === 'pong') {
      this.heartbeat.onPong(id);
      if (id && this.pending.has(id)) this.settle(id, msg);
      return;
    }
    if (msg.type === 'resume' && this.resuming && !(id && this.pending.has(id))) {
      this.finishResume(msg.data);
      return;
    }
    if (isStreamMessage(msg)) {
      const stream = msg as StreamEnvelope;
      if (this.resuming) this.resumeBuffer.push(stream);
      else this.deliverStream(stream);
      return;
    }
    if (msg.type === 'resume_gap') {
      this.queue.push(msg);
      return;
    }
    if (id && this.pending.has(id)) {
      this.settle(id, msg);
      return;
    }
    switch (msg.type) {
      case 'token_expiring':
        void this.handleTokenExpiring();
        this.queue.push(msg);
        return;
      case 'error':
        this.setView({ lastError: msg.data as unknown as ErrorData });
        this.queue.push(msg);
        return;
      default:
        // stream_degraded, replies to requests that already timed out, and
        // future push types: let the dashboard decide.
        this.queue.push(msg);
    }
  }

  private deliverStream(msg: StreamEnvelope, live = true): void {
    if (this.lastSeq !== null && msg.seq <= this.lastSeq) return; // duplicate from a replay
    this.lastSeq = msg.seq;
    if (live && msg.type === 'metrics_update') this.heartbeat.countLiveUpdate();
    this.queue.push(msg);
  }

  private finishResume(result: Record<string, unknown> | null): void {
    if (!this.resuming) return;
    this.resuming = false;
    if (this.resumeTimer !== null) clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    // Replayed messages and any live ones that raced them, in seq order,
    // duplicates dropped: the charts see one gap-free sequence.
    const msgs = this.resumeBuffer;
    this.resumeBuffer = [];
    msgs.sort((a, b) => a.seq - b.seq);
    for (const m of msgs) this.deliverStream(m, false); // a replay burst is not the live rate
    this.queue.push({ type: 'resume', data: result || { timeout: true } });
  }

  private settle(id: string, msg: Envelope): void {
    const p = this.pending.get(id);
    this.pending.delete(id);
    if (!p) return;
    clearTimeout(p.timer);
    if (msg.type === 'error') p.reject(new ProtocolError(msg.data as unknown as ErrorData));
    else p.resolve(msg.data);
  }

  // -- closing and reconnecting ---------------------------------------------

  private handleClose(code: number, _reason: string): void {
    this.ws = null;
    this.clearSessionTimers();
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
      void this.handleUnauthorized();
    } else if (isOffline()) {
      this.setView({ status: STATUS.OFFLINE, retryAt: null });
    } else {
      this.scheduleReconnect();
    }
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const attempt = this.view.attempt + 1;
    const delay = this.reconnect.delayFor(attempt);
    this.setView({ status: STATUS.RECONNECTING, attempt, retryAt: Date.now() + delay });
    this.reconnect.schedule(delay);
  }

  /** Focus, or the tab becoming visible: someone looks, so retry now. */
  private handleAttention(): void {
    if (this.stopped || !isVisible()) return;
    if (this.view.status === STATUS.RECONNECTING && this.reconnect.waiting) this.connect();
  }

  private async handleUnauthorized(): Promise<void> {
    this.authFailures += 1;
    const refresh = this.options.refreshToken;
    if (!refresh || this.authFailures > MAX_AUTH_RETRIES) {
      this.giveUpAuth();
      return;
    }
    this.setView({ status: STATUS.CONNECTING, retryAt: null });
    let token: string | null = null;
    try {
      token = await refresh();
    } catch {
      token = null;
    }
    if (this.stopped) return;
    if (token) this.connect();
    else this.giveUpAuth();
  }

  private giveUpAuth(): void {
    this.setView({ status: STATUS.UNAUTHORIZED, retryAt: null, attempt: 0 });
    try {
      this.options.onUnauthorized?.();
    } catch (err) {
      console.error('dashd: onUnauthorized failed', err);
    }
  }

  private async handleTokenExpiring(): Promise<void> {
    if (this.refreshing || !this.options.refreshToken) return;
    this.refreshing = true;
    try {
      const token = await this.options.refreshToken();
      if (token && this.view.status === STATUS.CONNECTED) {
        const reply = await this.request('auth', { token });
        if (reply && this.view.ack) {
          const role = typeof reply.role === 'string' ? (reply.role as ConnectionAckData['role']) : this.view.ack.role;
          this.setView({ ack: { ...this.view.ack, role, token_expires_at: reply.expires_at as string | undefined } });
        }
      }
    } catch (err) {
      // The server closes with 4001 at expiry; handleUnauthorized takes over.
      this.setView({ lastError: { code: 'refresh_failed', message: String((err as Error)?.message || err) } });
    } finally {
      this.refreshing = false;
    }
  }

  private handleOnline(): void {
    if (this.stopped) return;
    if (this.view.status === STATUS.OFFLINE || this.view.status === STATUS.RECONNECTING) {
      this.setView({ attempt: 0 });
      this.connect();
    }
  }

  private handleOffline(): void {
    if (this.stopped) return;
    this.reconnect.cancel();
    if (this.ws) {
      this.dropSocket(1000, 'browser offline');
      this.handleClose(1006, 'browser offline');
    }
    this.setView({ status: STATUS.OFFLINE, retryAt: null });
  }

  /** Retry at once (the "retry now" button, a fresh login after 4001). */
  reconnectNow(): void {
    if (this.stopped || this.view.status === STATUS.CONNECTED) return;
    this.authFailures = 0;
    this.connect();
  }

  // -- outgoing -----------------------------------------------------------

  private rawSend(msg: { type: string; data: unknown; correlation_id?: string }): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WS_OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** Send a request; resolves with the reply's `data`, rejects on `error`. */
  request(type: string, data: object = {}, { timeoutMs = REQUEST_TIMEOUT_MS }: RequestOptions = {}): Promise<Record<string, unknown>> {
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
