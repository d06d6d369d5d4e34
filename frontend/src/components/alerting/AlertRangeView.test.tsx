import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import AlertRangeView, { fetchRange } from './AlertRangeView';

afterEach(cleanup);

const FROM = Date.UTC(2026, 0, 1, 11, 30);
const TO = Date.UTC(2026, 0, 1, 12, 5);

describe('AlertRangeView', () => {
  it("asks /api/history for the link's host and range (in seconds) with the token", async () => {
    const fetchImpl = vi.fn(async (_url: string, _init?: RequestInit) => ({ ok: true, status: 200, json: async () => ({ host: 'db1', series: {} }) }));
    await fetchRange(() => 'tok', { from: FROM, to: TO, host: 'db1' }, fetchImpl);
    const [url, init] = fetchImpl.mock.calls[0];
    const params = new URL(url, 'http://x').searchParams;
    expect([params.get('from'), params.get('to'), params.get('host')]).toEqual([String(FROM / 1000), String(TO / 1000), 'db1']);
    expect(params.get('metrics')).toBe('cpu_usage,memory_usage,disk_usage');
    expect(init?.headers).toEqual({ Authorization: 'Bearer tok' });
  });

  it('shows the range, the host and each metric\'s peak', async () => {
    const series = { cpu_usage: [{ t: FROM, max: 40 }, { t: TO, max: 97.5 }], memory_usage: [], disk_usage: [] };
    const fetchImpl = async () => ({ ok: true, status: 200, json: async () => ({ host: 'db1', series }) });
    render(<AlertRangeView range={{ from: FROM, to: TO, host: 'db1' }} getToken={() => 't'} onClose={() => {}} fetchImpl={fetchImpl} />);
    expect(await screen.findByText('CPU peak 97.5 %')).toBeTruthy();
    expect(screen.getByText('Memory peak no data')).toBeTruthy();
    expect(screen.getByRole('heading').textContent).toBe('Alert time range: 2026-01-01 11:30:00Z – 2026-01-01 12:05:00Z on db1');
  });

  it("shows the daemon's reason when the history is refused", async () => {
    const fetchImpl = async () => ({ ok: false, status: 400, json: async () => ({ error: { message: "history: 'from' must be before 'to'" } }) });
    render(<AlertRangeView range={{ from: FROM, to: TO, host: null }} getToken={() => 't'} onClose={() => {}} fetchImpl={fetchImpl} />);
    expect((await screen.findByRole('alert')).textContent).toBe("history: 'from' must be before 'to'");
  });
});
