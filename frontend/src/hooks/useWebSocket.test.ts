// State-machine tests for useWebSocket against a fake WebSocket and fake timers.
import { act, cleanup, renderHook } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CONNECT_TIMEOUT_MS,
  HEALTH_PROBE_MS,
  PING_INTERVAL_MS,
  RECONNECT_VISIBLE_MAX_MS,
  PONG_TIMEOUT_MS,
  STATUS,
  useWebSocket,
  type ConnectionOptions,
  type WebSocketHandle,
} from './useWebSocket';
import type { HistoryData } from '../protocol/types';

/** A rejected request: the `error` frame's code and message. */
type RequestError = Error & { code?: string };
import type { Delivered } from '../connection/DashboardConnection';
import { RECONNECT_MAX_MS } from '../services/backoff';
import { FakeWebSocket, FakeWebSocketClass, latestSocket } from '../test/fakeWebSocket';

const FRAME_MS = 16;
const URL = 'ws://dashd.test/dashboard';

function metricsUpdate(seq: number, extra: Record<string, unknown> = {}) {
  return {
    type: 'metrics_update',
    seq,
    correlation_id: null,
    data: { timestamp: new Date(1_700_000_000_000 + seq * 1000).toISOString(), host: 'h', metrics: { cpu_usage: seq } },
    ...extra,
  };
}

function setup(overrides: Partial<ConnectionOptions> = {}) {
  const batches: Delivered[][] = [];
  const options = {
    WebSocket: FakeWebSocketClass,
    getToken: vi.fn(() => 'tok-1'),
    refreshToken: vi.fn(async () => 'tok-2'),
    onMessages: vi.fn((batch: Delivered[]) => {
      batches.push(batch);
    }),
    onConnected: vi.fn(),
    onUnauthorized: vi.fn(),
    random: () => 0.5,
    fetch: vi.fn(async (_url: string, _init?: RequestInit) => ({ ok: false })),
    scheduleFrame: (cb: () => void) => {
      const t = setTimeout(cb, FRAME_MS);
      return () => clearTimeout(t);
    },
    ...overrides,
  };
  const hook = renderHook(({ url }) => useWebSocket(url, options), { initialProps: { url: URL as string | null } });
  const delivered = () => batches.flat();
  const seqs = () => delivered().flatMap((m) => (typeof m.seq === 'number' && Number.isFinite(m.seq) ? [m.seq] : []));
  return { hook, options, batches, delivered, seqs };
}

/** Milliseconds until the scheduled reconnect; throws when none is scheduled. */
function retryIn(hook: { result: { current: WebSocketHandle } }): number {
  const at = hook.result.current.retryAt;
  if (at === null) throw new Error('no reconnect scheduled');
  return at - Date.now();
}

const advance = (ms: number) => act(() => vi.advanceTimersByTime(ms));
const server = (fn: () => void) => act(() => fn());

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2026-11-26T10:00:00Z'));
  FakeWebSocket.instances = [];
});

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe('connect and ack', () => {
  it('authenticates with an auth message first, then reports connected', () => {
    const { hook, options } = setup();
    expect(hook.result.current.status).toBe(STATUS.CONNECTING);
    const ws = latestSocket();
    expect(ws.url).toBe(URL);
    server(() => ws.open());
    expect(ws.sent[0]).toMatchObject({ type: 'auth', data: { token: 'tok-1' } });
    expect(ws.sent[0].data).not.toHaveProperty('resume_after_seq');
    expect(hook.result.current.status).toBe(STATUS.CONNECTING);

    server(() => ws.accept({ role: 'admin', interval: 0.5 }));
    expect(hook.result.current.status).toBe(STATUS.CONNECTED);
    expect(hook.result.current.ack).toMatchObject({ role: 'admin', interval: 0.5 });
    expect(options.onConnected).toHaveBeenCalledWith(
      expect.objectContaining({ role: 'admin' }),
      { resumed: false, seqReset: false },
    );
  });

  it('gives up on a socket that opens but never acknowledges, and retries', () => {
    const { hook } = setup();
    server(() => latestSocket().open());
    advance(CONNECT_TIMEOUT_MS);
    expect(hook.result.current.status).toBe(STATUS.RECONNECTING);
    expect(hook.result.current.attempt).toBe(1);
  });

  it('reports unauthorized without opening a socket when there is no token', () => {
    const { hook } = setup({ getToken: () => null });
    expect(hook.result.current.status).toBe(STATUS.UNAUTHORIZED);
    expect(FakeWebSocket.instances).toHaveLength(0);
  });
});

describe('batching', () => {
  it('hands stream messages over at most once per animation frame, in order', () => {
    const { options, seqs } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    server(() => {
      ws.receive(metricsUpdate(1));
      ws.receive(metricsUpdate(2));
      ws.receive(metricsUpdate(3));
    });
    expect(options.onMessages).not.toHaveBeenCalled();
    advance(FRAME_MS);
    expect(options.onMessages).toHaveBeenCalledTimes(1);
    expect(seqs()).toEqual([1, 2, 3]);

    server(() => ws.receive(metricsUpdate(4)));
    advance(FRAME_MS);
    expect(options.onMessages).toHaveBeenCalledTimes(2);
    expect(seqs()).toEqual([1, 2, 3, 4]);
  });

  it('drops duplicate and older seqs and ignores frames that are not JSON objects', () => {
    const { seqs } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    server(() => {
      ws.receive(metricsUpdate(5));
      ws.receive(metricsUpdate(5));
      ws.receive(metricsUpdate(4));
      ws.receive('not json');
      ws.receive('[1,2]');
      ws.receive(metricsUpdate(6));
    });
    advance(FRAME_MS);
    expect(seqs()).toEqual([5, 6]);
  });

  it('counts messages per second', () => {
    const { hook } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    server(() => {
      for (let s = 1; s <= 4; s += 1) ws.receive(metricsUpdate(s));
    });
    advance(1000);
    expect(hook.result.current.messagesPerSecond).toBe(4);
    advance(1000);
    expect(hook.result.current.messagesPerSecond).toBe(0);
  });
});

describe('reconnect back-off', () => {
  it('waits with exponential back-off and jitter, capped, then reconnects', () => {
    const { hook } = setup();
    server(() => latestSocket().drop(1006));
    // attempt 1: ceiling 500 ms, equal jitter with random()=0.5 -> 375 ms.
    expect(hook.result.current.status).toBe(STATUS.RECONNECTING);
    expect(hook.result.current.attempt).toBe(1);
    expect(hook.result.current.retryAt).toBe(Date.now() + 375);
    advance(374);
    expect(FakeWebSocket.instances).toHaveLength(1);
    advance(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(hook.result.current.status).toBe(STATUS.RECONNECTING);

    // attempt 2: ceiling 1000 ms -> 750 ms.
    server(() => latestSocket().drop(1006));
    expect(hook.result.current.attempt).toBe(2);
    expect(hook.result.current.retryAt).toBe(Date.now() + 750);

    // Many failures later the delay stays under the cap (a visible tab: a few seconds).
    for (let i = 0; i < 12; i += 1) {
      advance(RECONNECT_MAX_MS);
      server(() => latestSocket().drop(1006));
    }
    expect(retryIn(hook)).toBeLessThanOrEqual(RECONNECT_VISIBLE_MAX_MS);
    expect(retryIn(hook)).toBeGreaterThanOrEqual(RECONNECT_VISIBLE_MAX_MS / 2);

    // A successful ack resets the attempt counter.
    advance(RECONNECT_MAX_MS);
    server(() => latestSocket().accept());
    expect(hook.result.current.status).toBe(STATUS.CONNECTED);
    expect(hook.result.current.attempt).toBe(0);
  });

  it('caps the back-off at a few seconds while visible, and at 30 s only when hidden', () => {
    const { hook } = setup();
    const failAgain = () => {
      server(() => latestSocket().drop(1006));
      const wait = retryIn(hook);
      advance(wait);
      return wait;
    };
    const waits = [];
    for (let i = 0; i < 10; i += 1) waits.push(failAgain());
    expect(Math.max(...waits)).toBeLessThanOrEqual(RECONNECT_VISIBLE_MAX_MS);
    expect(Math.max(...waits)).toBeGreaterThanOrEqual(RECONNECT_VISIBLE_MAX_MS / 2);
    const hidden = vi.spyOn(Document.prototype, 'visibilityState', 'get').mockReturnValue('hidden');
    try {
      expect(failAgain()).toBeGreaterThanOrEqual(RECONNECT_MAX_MS / 2);
    } finally {
      hidden.mockRestore();
    }
  });

  it('retries at once on online, focus and the tab becoming visible', () => {
    const { hook } = setup();
    for (let i = 0; i < 6; i += 1) {
      server(() => latestSocket().drop(1006));
      advance(RECONNECT_MAX_MS);
    }
    for (const fire of [
      () => window.dispatchEvent(new Event('focus')),
      () => document.dispatchEvent(new Event('visibilitychange')),
      () => window.dispatchEvent(new Event('online')),
    ]) {
      server(() => latestSocket().drop(1006));
      expect(hook.result.current.retryAt).toBeGreaterThan(Date.now());
      const before = FakeWebSocket.instances.length;
      act(() => fire());
      expect(FakeWebSocket.instances.length).toBe(before + 1);
    }
  });

  it('probes /api/health between attempts and reconnects as soon as it answers', async () => {
    let healthy = false;
    const fetchFn = vi.fn(async () => ({ ok: healthy }));
    const { hook } = setup({ fetch: fetchFn });
    for (let i = 0; i < 5; i += 1) {
      server(() => latestSocket().drop(1006));
      advance(RECONNECT_MAX_MS);
    }
    server(() => latestSocket().drop(1006));
    const before = FakeWebSocket.instances.length;
    await act(async () => vi.advanceTimersByTimeAsync(HEALTH_PROBE_MS));
    expect(fetchFn).toHaveBeenCalledWith('/api/health', expect.objectContaining({ cache: 'no-store' }));
    expect(FakeWebSocket.instances.length).toBe(before);
    healthy = true;
    await act(async () => vi.advanceTimersByTimeAsync(HEALTH_PROBE_MS));
    expect(FakeWebSocket.instances.length).toBe(before + 1);
    expect(hook.result.current.retryAt).toBeNull();
  });

  it('says since when it is disconnected, until the next connection_ack', () => {
    const { hook } = setup();
    server(() => latestSocket().accept());
    expect(hook.result.current.disconnectedSince).toBeNull();
    const dropAt = Date.now();
    server(() => latestSocket().drop(1006));
    advance(5000);
    server(() => latestSocket().drop(1006));
    expect(hook.result.current.disconnectedSince).toBe(dropAt);
    advance(RECONNECT_MAX_MS);
    server(() => latestSocket().accept());
    expect(hook.result.current.disconnectedSince).toBeNull();
  });

  it('reports the metrics updates that actually arrive per second, not all frames', () => {
    const { hook } = setup();
    server(() => latestSocket().accept());
    // 9.5 s (before the unanswered ping times out): one update every 2.5 s
    // (0.4/s), plus other frames every 0.5 s.
    for (let s = 0; s < 19; s += 1) {
      if (s % 5 === 0) server(() => latestSocket().receive(metricsUpdate(s + 1)));
      server(() => latestSocket().receive({ type: 'stream_degraded', data: {} }));
      advance(500);
    }
    expect(hook.result.current.updatesPerSecond).toBeCloseTo(0.4, 1);
    expect(hook.result.current.messagesPerSecond).toBeGreaterThan(1);
  });

  it('reconnectNow skips the wait', () => {
    const { hook } = setup();
    server(() => latestSocket().drop(1006));
    act(() => hook.result.current.reconnect());
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('drops a connection whose pongs stop and reconnects', () => {
    const { hook } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    expect(ws.sentOfType('ping')).toHaveLength(1);
    advance(PONG_TIMEOUT_MS + PING_INTERVAL_MS);
    expect(hook.result.current.status).toBe(STATUS.RECONNECTING);
    expect(ws.closedWith).not.toBeNull();
  });
});

describe('latency', () => {
  it('measures round-trip time from ping to pong', () => {
    const { hook } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    const [ping] = ws.sentOfType('ping');
    advance(23);
    server(() => ws.receive({ type: 'pong', correlation_id: ping.correlation_id, data: { client_time: ping.data.client_time } }));
    expect(hook.result.current.latencyMs).toBe(23);
  });
});

describe('resume', () => {
  it('resumes with the last seq after a reconnect and delivers the replay in order without duplicates', () => {
    const { options, seqs } = setup();
    let ws = latestSocket();
    server(() => ws.accept({ seq: 3 }));
    server(() => [1, 2, 3].forEach((s) => ws.receive(metricsUpdate(s))));
    advance(FRAME_MS);

    server(() => ws.drop(1001, 'daemon shutting down'));
    advance(1000);
    ws = latestSocket();
    server(() => ws.open());
    expect(ws.sent[0]).toMatchObject({ type: 'auth', data: { token: 'tok-1', resume_after_seq: 3 } });

    server(() => {
      ws.accept({ seq: 9 });
      // A live update racing the replay, a duplicate, then the replay itself.
      ws.receive(metricsUpdate(9));
      ws.receive(metricsUpdate(3));
      ws.receive({ ...metricsUpdate(4), data: { ...metricsUpdate(4).data, recovered: true } });
      ws.receive(metricsUpdate(5));
      ws.receive({ type: 'notification', seq: 6, data: { id: 'n-1', level: 'info', title: 't', message: 'm' } });
      ws.receive(metricsUpdate(7));
      ws.receive(metricsUpdate(8));
    });
    advance(FRAME_MS);
    // Nothing is handed over until the replay is complete.
    expect(seqs()).toEqual([1, 2, 3]);
    expect(options.onConnected).toHaveBeenLastCalledWith(expect.anything(), { resumed: true, seqReset: false });

    server(() => ws.receive({ type: 'resume', correlation_id: ws.sent[0].correlation_id, data: { after_seq: 3, replayed: 5, recovered: 1, gaps: [], seq: 9 } }));
    server(() => ws.receive(metricsUpdate(10)));
    advance(FRAME_MS);
    expect(seqs()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const resumeMsg = vi.mocked(options.onMessages).mock.calls.flat(2).find((m) => m.type === 'resume');
    expect(resumeMsg?.data).toMatchObject({ replayed: 5 });
  });

  it('passes resume_gap on so the dashboard can refill it from history', async () => {
    const { hook, delivered } = setup();
    let ws = latestSocket();
    server(() => ws.accept());
    server(() => ws.receive(metricsUpdate(100)));
    advance(FRAME_MS);
    server(() => ws.drop(1006));
    advance(1000);
    ws = latestSocket();
    server(() => {
      ws.accept({ seq: 200 });
      ws.receive({ type: 'resume_gap', correlation_id: ws.sent[0].correlation_id, data: { from_seq: 101, to_seq: 150, from: '2026-11-26T09:00:00.000Z', to: '2026-11-26T09:01:00.000Z' } });
      ws.receive(metricsUpdate(151));
      ws.receive({ type: 'resume', data: { after_seq: 100, replayed: 1, recovered: 0, gaps: [{ from_seq: 101, to_seq: 150 }], seq: 151 } });
    });
    advance(FRAME_MS);
    const gap = delivered().find((m) => m.type === 'resume_gap');
    expect(gap?.data).toMatchObject({ from_seq: 101, to_seq: 150 });

    // The refill itself is a history request over the same socket.
    let reply: HistoryData | undefined;
    act(() => {
      hook.result.current.send('history', { metrics: ['cpu_usage'], from: gap?.data.from as string, to: gap?.data.to as string }).then((r) => {
        reply = r;
      });
    });
    const req = ws.sentOfType('history')[0];
    expect(req.data).toEqual({ metrics: ['cpu_usage'], from: '2026-11-26T09:00:00.000Z', to: '2026-11-26T09:01:00.000Z' });
    await act(async () => {
      ws.receive({ type: 'history', correlation_id: req.correlation_id, data: { series: { cpu_usage: [{ t: 1, avg: 2 }] }, bucket_ms: 1000 } });
    });
    expect(reply?.series.cpu_usage).toHaveLength(1);
  });

  it('starts over when the daemon seq went backwards (new store)', () => {
    const { delivered, seqs } = setup();
    let ws = latestSocket();
    server(() => ws.accept());
    server(() => ws.receive(metricsUpdate(500)));
    advance(FRAME_MS);
    server(() => ws.drop(1006));
    advance(1000);
    ws = latestSocket();
    server(() => {
      ws.accept({ seq: 7 });
      ws.receive(metricsUpdate(8));
    });
    advance(FRAME_MS);
    expect(delivered().some((m) => m.type === 'seq_reset')).toBe(true);
    expect(seqs()).toEqual([500, 8]);
  });
});

describe('auth expiry', () => {
  it('re-authenticates on the same socket when the token is about to expire', async () => {
    const { hook, options } = setup();
    const ws = latestSocket();
    server(() => ws.accept({ token_expires_at: '2026-11-26T10:01:00.000Z' }));
    await act(async () => {
      ws.receive({ type: 'token_expiring', data: { expires_at: '2026-11-26T10:01:00.000Z' } });
    });
    expect(options.refreshToken).toHaveBeenCalledTimes(1);
    const reauth = ws.sentOfType('auth')[1];
    expect(reauth.data).toEqual({ token: 'tok-2' });
    await act(async () => {
      ws.receive({ type: 'auth', correlation_id: reauth.correlation_id, data: { role: 'operator', expires_at: '2026-11-26T11:00:00.000Z' } });
    });
    expect(hook.result.current.ack?.token_expires_at).toBe('2026-11-26T11:00:00.000Z');
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('refreshes the token after a 4001 close and reconnects with it', async () => {
    let token = 'old';
    const { hook, options } = setup({
      getToken: () => token,
      refreshToken: vi.fn(async () => {
        token = 'new';
        return token;
      }),
    });
    server(() => latestSocket().accept());
    await act(async () => latestSocket().drop(4001, 'token expired'));
    expect(options.refreshToken).toHaveBeenCalledTimes(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    server(() => latestSocket().open());
    expect(latestSocket().sent[0].data.token).toBe('new');
    server(() => latestSocket().accept());
    expect(hook.result.current.status).toBe(STATUS.CONNECTED);
  });

  it('reports unauthorized when the refresh fails, and reconnects after a new login', async () => {
    let token = 'old';
    const { hook, options } = setup({ getToken: () => token, refreshToken: vi.fn(async () => null) });
    server(() => latestSocket().accept());
    await act(async () => latestSocket().drop(4001));
    expect(hook.result.current.status).toBe(STATUS.UNAUTHORIZED);
    expect(options.onUnauthorized).toHaveBeenCalledTimes(1);
    advance(RECONNECT_MAX_MS * 2);
    expect(FakeWebSocket.instances).toHaveLength(1); // no retry loop while signed out

    token = 'fresh';
    act(() => hook.result.current.reconnect());
    server(() => latestSocket().open());
    expect(latestSocket().sent[0].data.token).toBe('fresh');
  });

  it('does not loop when the server keeps rejecting refreshed tokens', async () => {
    const { hook, options } = setup();
    for (let i = 0; i < 5; i += 1) {
      const ws = latestSocket();
      if (!ws || ws.readyState === 3) break;
      await act(async () => {
        ws.open();
        ws.drop(4001);
      });
    }
    expect(hook.result.current.status).toBe(STATUS.UNAUTHORIZED);
    expect(vi.mocked(options.refreshToken).mock.calls.length).toBeLessThanOrEqual(2);
  });
});

describe('requests', () => {
  it('resolves replies by correlation_id and rejects error replies with their code', async () => {
    const { hook } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    let ok: unknown;
    let err: RequestError | undefined;
    act(() => {
      hook.result.current.send('set_rate', { max_hz: 0.5 }).then((d) => (ok = d));
      hook.result.current.send('ack', { notification_id: 'n-1' }).catch((e) => (err = e));
    });
    const [rate] = ws.sentOfType('set_rate');
    const [ackReq] = ws.sentOfType('ack');
    expect(rate.data).toEqual({ max_hz: 0.5 });
    await act(async () => {
      ws.receive({ type: 'error', correlation_id: ackReq.correlation_id, data: { code: 'forbidden', message: 'operators only' } });
      ws.receive({ type: 'set_rate', correlation_id: rate.correlation_id, data: { max_hz: 0.5, effective_hz: 0.5 } });
    });
    expect(ok).toEqual({ max_hz: 0.5, effective_hz: 0.5 });
    expect(err?.code).toBe('forbidden');
  });

  it('rejects requests while disconnected and pending ones when the socket drops', async () => {
    const { hook } = setup();
    await expect(hook.result.current.send('ping')).rejects.toThrow('not connected');
    server(() => latestSocket().accept());
    let err: RequestError | undefined;
    act(() => {
      hook.result.current.send('stats', { metrics: ['cpu_usage'] }).catch((e) => (err = e));
    });
    await act(async () => latestSocket().drop(1006));
    expect(err?.message).toMatch(/closed/);
  });
});

describe('browser offline', () => {
  it('goes offline on the offline event and reconnects on online', () => {
    const online = vi.spyOn(navigator, 'onLine', 'get').mockReturnValue(true);
    const { hook } = setup();
    server(() => latestSocket().accept());
    online.mockReturnValue(false);
    act(() => window.dispatchEvent(new Event('offline')));
    expect(hook.result.current.status).toBe(STATUS.OFFLINE);
    advance(RECONNECT_MAX_MS);
    expect(FakeWebSocket.instances).toHaveLength(1);
    online.mockReturnValue(true);
    act(() => window.dispatchEvent(new Event('online')));
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(hook.result.current.status).toBe(STATUS.CONNECTING);
  });
});

describe('cleanup', () => {
  it('closes the socket and leaves no timer or listener behind on unmount', () => {
    const add = vi.spyOn(window, 'addEventListener');
    const remove = vi.spyOn(window, 'removeEventListener');
    const { hook } = setup();
    const ws = latestSocket();
    server(() => ws.accept());
    server(() => ws.receive(metricsUpdate(1)));
    hook.unmount();
    expect(ws.closedWith).toEqual({ code: 1000, reason: 'client stopped' });
    expect(vi.getTimerCount()).toBe(0);
    const added = add.mock.calls.map((c) => c[0]).filter((t) => t === 'online' || t === 'offline');
    const removed = remove.mock.calls.map((c) => c[0]).filter((t) => t === 'online' || t === 'offline');
    expect(removed.sort()).toEqual(added.sort());
  });

  it('opens a new socket only when the URL changes, not when options change', () => {
    const { hook } = setup();
    hook.rerender({ url: URL });
    expect(FakeWebSocket.instances).toHaveLength(1);
    hook.rerender({ url: null });
    expect(hook.result.current.status).toBe(STATUS.IDLE);
    expect(FakeWebSocket.instances[0].closedWith).not.toBeNull();
  });
});
