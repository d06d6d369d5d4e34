// The whole app in jsdom, for App.test.tsx and Truth.test.tsx: a fake HTTP
// API (/api/login, /api/refresh, /api/logout), a fake WebSocket the test
// drives frame by frame (test/fakeWebSocket.ts), and the sign-in that gets a test to a connected
// dashboard. Chart.js is replaced by test/chartDouble.ts in each test file
// (vi.mock must be called there).

import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { expect, vi } from 'vitest';
import App from '../App';
import type { CatalogueEntry } from '../protocol/types';
import { resetCharts } from './chartDouble';
import { FakeWebSocket, type SentMessage } from './fakeWebSocket';

export { FakeWebSocket, latestSocket } from './fakeWebSocket';

const b64url = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
export const jwt = (claims: object) => `${b64url({ alg: 'HS256' })}.${b64url(claims)}.sig`;
export const TOKEN = jwt({ sub: 'alice', role: 'admin', exp: 4_000_000_000 });
export const LOGIN = { access_token: TOKEN, token_type: 'Bearer', expires_in: 900, expires_at: '2096-10-02T07:06:40.000Z', role: 'admin', username: 'alice' };

export const CATALOGUE: CatalogueEntry[] = (
  [
    ['cpu_usage', '%'], ['cpu_core_0', '%'], ['cpu_core_1', '%'], ['memory_usage', '%'], ['swap_usage', '%'],
    ['network_rx', 'B/s'], ['network_tx', 'B/s'], ['disk_read', 'B/s'], ['disk_write', 'B/s'], ['disk_usage', '%'],
    ['load_1', ''], ['process_count', 'count'], ['uptime', 's'], ['active_connections', 'count'],
  ] as const
).map(([name, unit]) => ({ name, unit }));

/** The daemon's clock at the start of each test's stream. */
export const T0 = Date.parse('2026-11-26T10:00:00.000Z');

let refreshStatus = 401;

/** What /api/refresh answers: 200 restores the session from the "cookie". */
export function setRefreshStatus(status: number): void {
  refreshStatus = status;
}

function fakeFetch() {
  return vi.fn(async (path: string) => {
    const reply = (status: number, body: unknown) => ({ ok: status < 300, status, statusText: '', json: async () => body });
    if (path === '/api/refresh') return refreshStatus === 200 ? reply(200, LOGIN) : reply(401, { error: { code: 'unauthorized', message: 'no session' } });
    if (path === '/api/login') return reply(200, LOGIN);
    if (path === '/api/logout') return { ok: true, status: 204, statusText: '', json: async () => null };
    return reply(404, { error: { code: 'not_found', message: path } });
  });
}

/** Sign in as alice (admin) with the password form; returns the acknowledged socket. */
export async function signIn(): Promise<FakeWebSocket> {
  render(<App />);
  fireEvent.change(await screen.findByLabelText('Username'), { target: { value: 'alice' } });
  fireEvent.change(screen.getByLabelText('Password'), { target: { value: 'pw' } });
  fireEvent.click(screen.getByRole('button', { name: 'Sign in' }));
  await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
  const ws = FakeWebSocket.instances[0];
  act(() => ws.open());
  const auth = ws.sent[0];
  act(() =>
    ws.receive({
      type: 'connection_ack',
      correlation_id: auth.correlation_id,
      data: { role: 'admin', user: 'alice', host: 'web-1', interval: 0.5, seq: 10, metrics: CATALOGUE, rate: { max_hz: 2 }, limits: { max_rate_hz: 10, max_history_points: 5000 } },
    }),
  );
  return ws;
}

/** Reply to the newest request of a type; returns that request. */
export function reply(ws: FakeWebSocket, type: string, data: object, replyType = type): SentMessage {
  const req = ws.last(type);
  if (!req) throw new Error(`the page sent no ${type}`);
  act(() => ws.receive({ type: replyType, correlation_id: req.correlation_id, data }));
  return req;
}

/** beforeEach: fresh doubles, a signed-out browser. */
export function installDoubles(): void {
  resetCharts();
  FakeWebSocket.instances = [];
  refreshStatus = 401;
  vi.stubGlobal('WebSocket', FakeWebSocket);
  vi.stubGlobal('fetch', fakeFetch());
  window.localStorage.clear();
  window.sessionStorage.clear();
}

/** afterEach: unmount and restore the globals. */
export function removeDoubles(): void {
  cleanup();
  vi.unstubAllGlobals();
}
