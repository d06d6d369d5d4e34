// The whole app in jsdom with a fake HTTP API, a fake WebSocket and a fake
// Chart.js: login, live tiles and charts (updated in place), controls on the
// wire, notifications with acknowledge, and expiry without losing the view.
import { act, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import App from './App';
import { chartWith } from './test/chartDouble';
import { FakeWebSocket, T0, TOKEN, installDoubles, removeDoubles, reply, setRefreshStatus, signIn } from './test/appHarness';

vi.mock('chart.js', () => import('./test/chartDouble'));

beforeEach(installDoubles);
afterEach(removeDoubles);

function update(seq: number, metrics: Record<string, number>) {
  return { type: 'metrics_update', seq, correlation_id: null, data: { timestamp: new Date(T0 + seq * 500).toISOString(), host: 'web-1', metrics } };
}

describe('App', () => {
  it('logs in, connects to /dashboard and authenticates with the token', async () => {
    const ws = await signIn();
    expect(ws.url).toMatch(/^ws:\/\/.+\/dashboard$/);
    expect(ws.sent[0]).toMatchObject({ type: 'auth', data: { token: TOKEN } });
    const status = screen.getByTestId('connection-status');
    expect(status.dataset.state).toBe('connected');
    expect(status.textContent).toMatch(/Connected/);
    expect(fetch).toHaveBeenCalledWith('/api/login', expect.objectContaining({ method: 'POST' }));
  });

  it('restores the session on reload from the refresh cookie', async () => {
    setRefreshStatus(200);
    render(<App />);
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(1));
    expect(screen.queryByLabelText('Password')).toBeNull();
  });

  it('shows live values in tiles and appends to the charts in place', async () => {
    const ws = await signIn();
    // The initial history fill and notification list.
    reply(ws, 'history', { bucket_ms: 500, series: { cpu_usage: [{ t: T0, avg: 5 }] } });
    reply(ws, 'notification_state', { notifications: [], unread: 0, unacknowledged: 0 });
    const cpuChart = chartWith('cpu_usage');
    await waitFor(() => expect(cpuChart.data.datasets.map((d) => d.metric)).toEqual(['cpu_usage', 'cpu_core_0', 'cpu_core_1']));
    const datasetsBefore = [...cpuChart.data.datasets];

    act(() => {
      ws.receive(update(11, { cpu_usage: 45.2, cpu_core_0: 40, cpu_core_1: 50, network_rx: 1536, memory_usage: 95 }));
      ws.receive(update(12, { cpu_usage: 47.5, cpu_core_0: 45, cpu_core_1: 50, network_rx: 2 * 1024 * 1024, memory_usage: 95 }));
    });
    const cpuTile = await screen.findByTestId('tile-cpu_usage');
    await waitFor(() => expect(cpuTile.dataset.value).toBe('47.5'), { timeout: 2000 });
    expect(cpuTile.textContent).toMatch(/47\.5\s*%/);
    expect(screen.getByTestId('tile-network_rx').textContent).toMatch(/2\.00\s*MiB\/s/);
    expect(screen.getByTestId('tile-memory_usage').dataset.level).toBe('crit');

    // Same dataset objects, drawn without animation, data from the store.
    expect(cpuChart.data.datasets).toEqual(datasetsBefore);
    cpuChart.data.datasets.forEach((d, i) => expect(d).toBe(datasetsBefore[i]));
    expect(cpuChart.updates.at(-1)).toBe('none');
    // Redraws are throttled to one per pixel of the window, so allow a moment.
    await waitFor(() => expect(cpuChart.data.datasets[0].data.map((p) => p.y)).toEqual([5, 45.2, 47.5]), { timeout: 3000 });
    expect(window.__dashd?.seqs()).toEqual([11, 12]);
    expect(cpuChart.options.scales.x.max - cpuChart.options.scales.x.min).toBe(5 * 60_000);
  });

  it('sends set_rate, subscribe and history when the controls change', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });

    fireEvent.change(screen.getByLabelText('Update rate'), { target: { value: '0.5' } });
    expect(ws.last('set_rate')?.data).toEqual({ max_hz: 0.5 });
    reply(ws, 'set_rate', { max_hz: 0.5, effective_hz: 0.5 });
    await waitFor(() => expect(screen.getByTestId('effective-rate').textContent).toBe('0.5 Hz'));

    fireEvent.click(screen.getByRole('radio', { name: '1 h' }));
    expect(ws.last('history')?.data).toMatchObject({ from: '-1h', max_points: 1000 });
    expect(ws.last('history')?.data.metrics).toContain('cpu_core_1');

    fireEvent.click(within(screen.getByRole('group', { name: 'Metrics' })).getByLabelText('Network'));
    expect(ws.last('unsubscribe')?.data).toEqual({});
    reply(ws, 'unsubscribe', { metrics: [], hosts: ['*'] });
    await waitFor(() => expect(ws.last('subscribe')).toBeDefined());
    expect(ws.last('subscribe')?.data.metrics).not.toContain('network_*');
    expect(ws.last('subscribe')?.data.metrics).toContain('cpu_*');
    expect(screen.queryByTestId('chart-network')).toBeNull();
    expect(screen.queryByTestId('tile-network_rx')).toBeNull();
  });

  it('pauses drawing while the stream keeps buffering', async () => {
    const ws = await signIn();
    const cpuChart = chartWith('cpu_usage');
    fireEvent.click(screen.getByTestId('pause-button'));
    const drawn = cpuChart.updates.length;
    act(() => ws.receive(update(11, { cpu_usage: 1 })));
    await waitFor(() => expect(window.__dashd?.seqs()).toEqual([11]), { timeout: 2000 });
    expect(cpuChart.updates.length).toBe(drawn);
    await waitFor(() => expect(screen.getByText('1 updates buffered')).toBeTruthy());
    fireEvent.click(screen.getByTestId('pause-button'));
    expect(cpuChart.updates.length).toBeGreaterThan(drawn);
  });

  it('lists notifications, toasts critical ones and acknowledges', async () => {
    const ws = await signIn();
    act(() =>
      ws.receive({
        type: 'notification',
        seq: 11,
        correlation_id: null,
        data: { id: 'n-1', level: 'critical', title: 'disk full', message: '/ at 97 %', timestamp: new Date().toISOString(), source: 'rule:disk_full', state: 'firing' },
      }),
    );
    const item = await screen.findByTestId('notification-item', {}, { timeout: 2000 });
    expect(item.dataset.level).toBe('critical');
    expect(screen.getByTestId('notifications-unread').textContent).toBe('1');
    expect((await screen.findByTestId('toast')).textContent).toMatch(/disk full/);

    fireEvent.click(within(item).getByRole('button', { name: 'Acknowledge disk full' }));
    expect(ws.last('ack')?.data).toEqual({ notification_id: 'n-1' });
    reply(ws, 'ack', { id: 'n-1', acknowledged_by: 'alice', acknowledged_at: new Date().toISOString() });
    await waitFor(() => expect(screen.getByTestId('notification-item').dataset.acknowledged).toBe('true'));
    expect(screen.getByTestId('notification-item').textContent).toMatch(/acknowledged by alice/);
    expect(screen.getByTestId('notifications-unread').textContent).toBe('0');
  });

  it('keeps the dashboard under a sign-in dialog when the session expires, then resumes', async () => {
    const ws = await signIn();
    act(() => ws.receive(update(11, { cpu_usage: 12 })));
    await waitFor(() => expect(window.__dashd?.lastSeq()).toBe(11));
    // Refresh fails (401): the session is over.
    await act(async () => ws.drop(4001));
    const dialog = await screen.findByRole('dialog', { name: 'Session expired' });
    expect(screen.getByTestId('tile-cpu_usage')).toBeTruthy();
    await waitFor(() => expect(screen.getByTestId('connection-status').dataset.state).toBe('unauthorized'));

    fireEvent.change(within(dialog).getByLabelText('Username'), { target: { value: 'alice' } });
    fireEvent.change(within(dialog).getByLabelText('Password'), { target: { value: 'pw' } });
    fireEvent.click(within(dialog).getByRole('button', { name: 'Sign in' }));
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(2));
    const ws2 = FakeWebSocket.instances[1];
    act(() => ws2.open());
    expect(ws2.sent[0].data).toMatchObject({ token: TOKEN, resume_after_seq: 11 });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(screen.getByTestId('tile-cpu_usage').dataset.value).toBe('12');
  });

  it('lowers its rate while the tab is hidden and catches up from history on return', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });
    act(() => ws.receive(update(11, { cpu_usage: 3 })));
    await waitFor(() => expect(window.__dashd?.seqs()).toEqual([11]), { timeout: 2000 });
    const cpuChart = chartWith('cpu_usage');

    vi.useFakeTimers();
    try {
      let hidden = true;
      vi.spyOn(document, 'hidden', 'get').mockImplementation(() => hidden);
      act(() => document.dispatchEvent(new Event('visibilitychange')));
      const drawn = cpuChart.updates.length;
      act(() => ws.receive(update(12, { cpu_usage: 4 })));
      act(() => vi.advanceTimersByTime(1000)); // the hidden-tab flush (no animation frames)
      expect(window.__dashd?.seqs()).toEqual([11, 12]); // still buffered into the store
      expect(cpuChart.updates.length).toBe(drawn); // but not drawn

      act(() => vi.advanceTimersByTime(30_000));
      expect(ws.last('set_rate')?.data).toEqual({ max_hz: 0.2 });
      await act(async () => {
        reply(ws, 'set_rate', { max_hz: 0.2, effective_hz: 0.2 });
      });

      hidden = false;
      act(() => document.dispatchEvent(new Event('visibilitychange')));
      expect(cpuChart.updates.length).toBeGreaterThan(drawn); // redrawn at once
      expect(ws.last('set_rate')?.data).toEqual({ max_hz: 10 }); // back to live
      const refill = ws.last('history')?.data;
      expect(refill?.from).toBe(new Date(T0 + 11 * 500).toISOString()); // from when it was hidden
    } finally {
      vi.useRealTimers();
    }
  });

  it('draws the daemon host only, and switches to another host on request', async () => {
    const ws = await signIn();
    reply(ws, 'history', { bucket_ms: 500, series: {} });
    act(() => {
      ws.receive(update(11, { cpu_usage: 10 }));
      ws.receive({ ...update(12, { cpu_usage: 99 }), data: { ...update(12, {}).data, host: 'agent-1', metrics: { cpu_usage: 99 } } });
      ws.receive(update(13, { cpu_usage: 11 }));
    });
    await waitFor(() => expect(window.__dashd?.seqs()).toEqual([11, 13]), { timeout: 2000 });
    expect(window.__dashd?.streamSeqs()).toEqual([11, 12, 13]);
    const select = await screen.findByLabelText('Host');
    fireEvent.change(select, { target: { value: 'agent-1' } });
    expect(ws.last('history')?.data).toMatchObject({ host: 'agent-1' });
    expect(window.__dashd?.seqs()).toEqual([]);
    act(() => ws.receive({ ...update(14, {}), data: { ...update(14, {}).data, host: 'agent-1', metrics: { cpu_usage: 98 } } }));
    await waitFor(() => expect(window.__dashd?.seqs()).toEqual([14]), { timeout: 2000 });
  });

  it('shows reconnecting with the attempt number when the socket drops', async () => {
    const ws = await signIn();
    act(() => ws.drop(1006));
    const status = screen.getByTestId('connection-status');
    expect(status.dataset.state).toBe('reconnecting');
    expect(status.textContent).toMatch(/attempt 1, next try in \d+ s/);
    expect(screen.getByRole('button', { name: 'Retry now' })).toBeTruthy();
  });
});
