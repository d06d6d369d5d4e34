// Issue 16, "a dashboard that tells the truth": the whole app in jsdom with a
// fake HTTP API, a fake WebSocket and a fake Chart.js (the same doubles as
// App.test.tsx, from src/test/). Each block is one item of the issue; each test failed
// before the change.
import { act, cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { chartWith } from './test/chartDouble';
import { CATALOGUE, FakeWebSocket, T0, installDoubles, latestSocket, removeDoubles, reply, signIn } from './test/appHarness';

vi.mock('chart.js', () => import('./test/chartDouble'));

beforeEach(installDoubles);
afterEach(removeDoubles);

const cpuChart = () => chartWith('cpu_usage');
/** The listed notification with this id; throws when it is not listed. */
function notificationItem(id: string): HTMLElement {
  const item = screen.getAllByTestId('notification-item').find((el) => el.dataset.id === id);
  if (!item) throw new Error(`notification ${id} is not listed`);
  return item;
}
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const sampleAt = (seq: number, seconds: number, metrics: Record<string, number>) => ({ type: 'metrics_update', seq, correlation_id: null, data: { timestamp: at(seconds), host: 'web-1', metrics } });
const note = (id: string, extra: Record<string, unknown> = {}) => ({ id, level: 'critical', title: `t-${id}`, message: 'm', timestamp: new Date().toISOString(), source: 'rule:disk_full', state: 'firing', ...extra });

describe('1. outages are not hidden', () => {
  it('breaks the line where samples are missing for more than about two intervals', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });
    act(() => {
      ws.receive(sampleAt(11, 1, { cpu_usage: 10 }));
      ws.receive(sampleAt(12, 1.5, { cpu_usage: 11 }));
      ws.receive(sampleAt(13, 2, { cpu_usage: 12 }));
      // the daemon was down for 21 s
      ws.receive(sampleAt(14, 23, { cpu_usage: 13 }));
      ws.receive(sampleAt(15, 23.5, { cpu_usage: 14 }));
    });
    await waitFor(() => expect(cpuChart().data.datasets[0].data.filter((p) => p.y !== null)).toHaveLength(5), { timeout: 3000 });
    const data = cpuChart().data.datasets[0].data;
    expect(data.filter((p) => p.y === null)).toHaveLength(1);
    expect(cpuChart().options.spanGaps).toBe(false);
  });

  it('shades the span of a known outage (connection lost until the first new sample)', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });
    act(() => ws.receive(sampleAt(11, 1, { cpu_usage: 10 })));
    await waitFor(() => expect(window.__dashd?.seqs()).toEqual([11]), { timeout: 2000 });
    act(() => ws.drop(1006));
    await act(async () => screen.getByRole('button', { name: 'Retry now' }).click());
    const ws2 = latestSocket();
    act(() => ws2.open());
    act(() => ws2.receive({ type: 'connection_ack', correlation_id: ws2.sent[0].correlation_id, data: { role: 'admin', host: 'web-1', interval: 0.5, seq: 11, metrics: CATALOGUE } }));
    act(() => ws2.receive({ type: 'resume', correlation_id: null, data: { after_seq: 11, replayed: 0, recovered: 0, gaps: [], seq: 11 } }));
    act(() => ws2.receive(sampleAt(12, 22, { cpu_usage: 12 })));
    await waitFor(() => expect(cpuChart().options.plugins.outages?.spans).toEqual([{ from: T0 + 1000, to: T0 + 22000 }]), { timeout: 3000 });
  }, 10_000);
});

describe('2. paused charts stay inspectable', () => {
  it('keeps its own frozen data while samples keep arriving', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });
    act(() => ws.receive(sampleAt(11, 1, { cpu_usage: 10 })));
    await waitFor(() => expect(cpuChart().data.datasets[0].data).toHaveLength(1), { timeout: 3000 });
    fireEvent.click(screen.getByTestId('pause-button'));
    const frozen = cpuChart().data.datasets[0].data;
    act(() => ws.receive(sampleAt(12, 1.5, { cpu_usage: 11 })));
    await waitFor(() => expect(window.__dashd?.seqs()).toEqual([11, 12]), { timeout: 2000 });
    // The chart's data is not the store's growing array, so Chart.js's parsed
    // elements (and its tooltips) stay consistent with what is drawn.
    expect(cpuChart().data.datasets[0].data).toBe(frozen);
    expect(frozen).toHaveLength(1);
  });
});

describe('3. unread and unacknowledged come from the server, per user', () => {
  it('shows the server unread count after a reload and marks read on the server', async () => {
    const ws = await signIn();
    reply(ws, 'notification_state', {
      notifications: [note('n-1', { read: false }), note('n-2', { read: true, acknowledged_by: 'bob' })],
      unread: 4,
      unacknowledged: 4,
    });
    await waitFor(() => expect(screen.getByRole('link', { name: 'Notifications, 4 unread' })).toBeTruthy());
    expect(screen.getByTestId('notifications-unacknowledged').textContent).toBe('4 to acknowledge');
    fireEvent.click(notificationItem('n-1'));
    expect(ws.last('notification_read')?.data).toEqual({ ids: ['n-1'] });
    await waitFor(() => expect(screen.getByRole('link', { name: 'Notifications, 3 unread' })).toBeTruthy());
    fireEvent.click(screen.getByRole('button', { name: 'Mark all read' }));
    expect(ws.last('notification_read')?.data).toEqual({ all: true });
    await waitFor(() => expect(screen.getByRole('link', { name: 'Notifications, 0 unread' })).toBeTruthy());
    // An acknowledgement elsewhere: the server's count is asked again.
    act(() => ws.receive({ type: 'notification_ack', seq: 11, correlation_id: null, data: { id: 'n-1', acknowledged_by: 'bob', acknowledged_at: new Date().toISOString() } }));
    await waitFor(() => expect(ws.last('notification_state')?.data).toEqual({ limit: 1 }));
    reply(ws, 'notification_state', { notifications: [], unread: 0, unacknowledged: 3 });
    await waitFor(() => expect(screen.getByTestId('notifications-unacknowledged').textContent).toBe('3 to acknowledge'));
  });
});

describe('4. alert state is a state, not a feed', () => {
  it('lists active alerts, updates them in place, and toasts follow acknowledgement', async () => {
    const ws = await signIn();
    reply(ws, 'alerts', { alerts: [{ rule: 'disk_full', host: 'web-1', metric: 'disk_usage', level: 'critical', title: 'disk full', since: at(0), value: 97, notification_id: 'n-9', acknowledged_by: null, acknowledged_at: null }] });
    const item = await screen.findByTestId('active-alert');
    expect(item.textContent).toMatch(/firing since/);
    expect(within(item).getByRole('button', { name: 'Acknowledge disk_full on web-1' })).toBeTruthy();

    act(() => ws.receive({ type: 'notification', seq: 11, correlation_id: null, data: note('n-9', { title: 'disk full' }) }));
    const toast = await screen.findByTestId('toast');
    expect(within(toast).getByRole('button', { name: 'Acknowledge' })).toBeTruthy();

    act(() => ws.receive({ type: 'notification_ack', seq: 12, correlation_id: null, data: { id: 'n-9', acknowledged_by: 'bob', acknowledged_at: new Date().toISOString() } }));
    await waitFor(() => expect(screen.queryByTestId('toast')).toBeNull());
    const same = screen.getByTestId('active-alert');
    expect(same).toBe(item); // updated in place, not a new entry
    expect(same.textContent).toMatch(/acknowledged by bob/);
  });

  it('marks a firing item resolved once its rule no longer fires, and offers no Acknowledge on info', async () => {
    const ws = await signIn();
    reply(ws, 'notification_state', {
      notifications: [note('n-1', { level: 'warning', read: true }), note('n-2', { level: 'info', state: 'resolved', title: 'back to normal', read: true })],
      unread: 0,
      unacknowledged: 1,
    });
    reply(ws, 'alerts', { alerts: [] });
    await waitFor(() => expect(screen.getAllByTestId('notification-item')).toHaveLength(2));
    const [first, second] = ['n-1', 'n-2'].map(notificationItem);
    await waitFor(() => expect(first.dataset.state).toBe('resolved'));
    expect(within(first).queryByRole('button', { name: /Acknowledge/ })).toBeNull();
    expect(within(second).queryByRole('button', { name: /Acknowledge/ })).toBeNull();
  });
});

describe('5. a disconnected page says so everywhere', () => {
  it('dims the page and says since when', async () => {
    const ws = await signIn();
    act(() => ws.drop(1006));
    const banner = await screen.findByTestId('disconnected-banner');
    expect(banner.textContent).toMatch(/Disconnected from dashd since \d\d:\d\d:\d\d/);
    expect(document.querySelector('.app')?.classList.contains('is-disconnected')).toBe(true);
  });
});

describe('6. numbers that read right', () => {
  it('offers bits/s for the network chart and remembers it', async () => {
    await signIn();
    fireEvent.change(screen.getByLabelText('Network units'), { target: { value: 'bits' } });
    const net = chartWith('network_rx');
    expect(net.options.scales.y.ticks.callback.call({ $rate: { scale: 1e6, unit: 'Mbit/s' }, max: 8e6 }, 4e6)).toBe('4 Mbit/s');
    expect(window.localStorage.getItem('dashd.networkUnit')).toBe('bits');
  });
});

describe('7. a mostly empty window says so', () => {
  it('fills from history on open and says "data since" when the store has no more', async () => {
    const ws = await signIn();
    const req = reply(ws, 'history', { bucket_ms: 500, series: { cpu_usage: [{ t: T0 + 4 * 60_000, avg: 5 }, { t: T0 + 4 * 60_000 + 500, avg: 6 }] } });
    expect(req.data.from).toBe('-5m');
    act(() => ws.receive(sampleAt(11, 300, { cpu_usage: 7 })));
    await waitFor(() => expect(screen.getByTestId('coverage-cpu').textContent).toMatch(/data since \d\d:\d\d:\d\d/), { timeout: 3000 });
  });
});

describe('10. charts you can work with', () => {
  it('a legend click hides a series, "only" isolates it, and the legend shows min/avg/max', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });
    act(() => {
      ws.receive(sampleAt(11, 1, { cpu_usage: 10, cpu_core_0: 1, cpu_core_1: 2 }));
      ws.receive(sampleAt(12, 1.5, { cpu_usage: 30, cpu_core_0: 1, cpu_core_1: 2 }));
    });
    const legend = screen.getByTestId('legend-cpu_usage');
    await waitFor(() => expect(within(legend).getByTestId('legend-stats-cpu_usage').textContent).toBe('min 10.0 % · avg 20.0 % · max 30.0 %'), { timeout: 3000 });
    fireEvent.click(within(legend).getByRole('button', { name: /^Total/ }));
    expect(cpuChart().data.datasets[0].hidden).toBe(true);
    expect(within(legend).getByRole('button', { name: /^Total/ }).getAttribute('aria-pressed')).toBe('false');
    fireEvent.click(screen.getByRole('button', { name: 'Show only Core 0' }));
    expect(cpuChart().data.datasets.map((d) => d.hidden)).toEqual([true, false, true]);
    fireEvent.click(screen.getByRole('button', { name: 'Show all CPU series' }));
    expect(cpuChart().data.datasets.map((d) => d.hidden)).toEqual([false, false, false]);
  });

  it('the rules table shows the clear threshold and state, and deletion asks first', async () => {
    const ws = await signIn();
    reply(ws, 'rule_list', { rules: [{ name: 'cpu_high', metric: 'cpu_usage', op: '>', threshold: 90, for: 60, level: 'warning', clear: 80, clear_threshold: 80, enabled: true, firing: ['web-1'], pending: [], state: 'firing' }] });
    const row = await screen.findByTestId('rule-row');
    expect(within(row).getByTestId('rule-clear').textContent).toBe('≤ 80');
    expect(within(row).getByTestId('rule-state').textContent).toBe('firing on web-1');
    fireEvent.click(within(row).getByRole('button', { name: 'Delete rule cpu_high' }));
    expect(ws.last('rule_delete')).toBeUndefined();
    fireEvent.click(within(row).getByRole('button', { name: 'Keep' }));
    fireEvent.click(within(row).getByRole('button', { name: 'Delete rule cpu_high' }));
    fireEvent.click(within(row).getByRole('button', { name: 'Yes, delete cpu_high' }));
    expect(ws.last('rule_delete')?.data).toEqual({ name: 'cpu_high' });
  });

  it('metric-group choices survive a reload', async () => {
    await signIn();
    fireEvent.click(within(screen.getByRole('group', { name: 'Metrics' })).getByLabelText('Network'));
    cleanup();
    FakeWebSocket.instances = [];
    const ws = await signIn();
    expect(within(screen.getByRole('group', { name: 'Metrics' })).getByLabelText<HTMLInputElement>('Network').checked).toBe(false);
    expect(screen.queryByTestId('chart-network')).toBeNull();
    await waitFor(() => expect(ws.last('unsubscribe')).toBeDefined());
  });
});
