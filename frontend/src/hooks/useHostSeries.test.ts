// The host panels' view of the store: the first host values show at once,
// later ones at most once a second, and a store without host series causes
// no re-renders at all.
import { act, renderHook } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSeriesStore } from '../services/seriesStore';
import { HOST_REFRESH_MS, useHostIndex } from './useHostSeries';

afterEach(() => {
  vi.useRealTimers();
});

function add(store: ReturnType<typeof createSeriesStore>, t: number, values: Record<string, number>) {
  act(() => {
    store.appendSample({ t, seq: t, values });
    store.notify();
  });
}

describe('useHostIndex', () => {
  it('shows the first host values at once and later ones at most once a second', () => {
    vi.useFakeTimers();
    const store = createSeriesStore();
    let renders = 0;
    const hook = renderHook(() => {
      renders += 1;
      return useHostIndex(store);
    });
    add(store, 1000, { cpu_usage: 1 });
    add(store, 2000, { cpu_usage: 2 });
    expect(renders).toBe(1);
    add(store, 3000, { 'net_rx_bytes_per_second{iface="eth0"}': 5 });
    expect(hook.result.current.get('net_rx_bytes_per_second')?.[0].value).toBe(5);
    add(store, 4000, { 'net_rx_bytes_per_second{iface="eth0"}': 6 });
    expect(hook.result.current.get('net_rx_bytes_per_second')?.[0].value).toBe(5);
    act(() => {
      vi.advanceTimersByTime(HOST_REFRESH_MS);
    });
    expect(hook.result.current.get('net_rx_bytes_per_second')?.[0].value).toBe(6);
  });
});
