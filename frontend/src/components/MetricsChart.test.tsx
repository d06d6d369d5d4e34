// MetricsChart: one Chart.js instance per chart, created once and redrawn in
// place from the series store; a paused chart keeps its frozen data; the
// accessible summary and data table follow the store. Chart.js is faked (jsdom
// has no canvas); the store is the real one.
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('chart.js', () => import('../test/chartDouble'));

const { FakeChart: Chart } = await import('../test/chartDouble');
const { default: MetricsChart, nearestIndex } = await import('./MetricsChart');
const { createCrosshair } = await import('../services/crosshair');
const { createSeriesStore } = await import('../services/seriesStore');

const T0 = Date.parse('2026-11-26T10:00:00.000Z');
const WINDOW_MS = 60_000;

function fill(store: ReturnType<typeof createSeriesStore>, from: number, to: number) {
  for (let i = from; i <= to; i += 1) {
    store.appendSample({ t: T0 + i * 1000, seq: i, host: 'web-1', values: { memory_usage: 40 + i, swap_usage: 5 } });
  }
}

function renderChart(props: Record<string, unknown> = {}) {
  const store = createSeriesStore();
  const registry = new Map<string, unknown>();
  const all = {
    id: 'memory',
    title: 'Memory & swap',
    unit: '%',
    yMax: 100,
    metrics: ['memory_usage', 'swap_usage'],
    labels: { memory_usage: 'Memory', swap_usage: 'Swap' },
    store,
    windowMs: WINDOW_MS,
    paused: false,
    theme: 'light',
    registry,
    outages: null,
    ...props,
  };
  const view = render(<MetricsChart {...all} />);
  const chart = Chart.instances[Chart.instances.length - 1];
  return { store, registry, chart, view, props: all };
}

afterEach(() => {
  cleanup();
  Chart.instances.length = 0;
});

describe('MetricsChart', () => {
  it('creates one chart with a dataset per metric and destroys it on unmount', () => {
    const { chart, registry, view } = renderChart();
    expect(Chart.instances).toHaveLength(1);
    expect(chart.data.datasets.map((d) => d.metric)).toEqual(['memory_usage', 'swap_usage']);
    expect(chart.data.datasets.map((d) => d.label)).toEqual(['Memory', 'Swap']);
    expect(registry.get('memory')).toBe(chart);
    expect(screen.getByTestId('coverage-memory').textContent).toContain('no data in this window yet');
    view.unmount();
    expect(chart.destroyed).toBe(true);
    expect(registry.has('memory')).toBe(false);
  });

  it('redraws in place from the store and summarises the visible range', async () => {
    const { store, chart } = renderChart();
    act(() => {
      fill(store, 0, 4);
      store.notify();
    });
    await waitFor(() => expect(chart.data.datasets[0].data.filter((p) => p.y !== null)).toHaveLength(5), { timeout: 10_000 });
    expect(Chart.instances).toHaveLength(1);
    expect(chart.updates.every((m) => m === 'none')).toBe(true);
    await waitFor(() => expect(screen.getByTestId('summary-memory').textContent).toContain('Memory: min 40.0 %, average 42.0 %, max 44.0 %'), { timeout: 10_000 });
  });

  it('keeps a paused chart frozen while the store grows', async () => {
    const { store, chart, view, props } = renderChart();
    act(() => {
      fill(store, 0, 2);
      store.notify();
    });
    await waitFor(() => expect(chart.data.datasets[0].data.filter((p) => p.y !== null)).toHaveLength(3), { timeout: 10_000 });
    view.rerender(<MetricsChart {...props} paused />);
    expect(screen.getByTestId('chart-memory').textContent).toContain('paused');
    const frozen = chart.data.datasets[0].data;
    act(() => {
      fill(store, 3, 6);
      store.notify();
    });
    expect(chart.data.datasets[0].data).toBe(frozen);
    expect(frozen.filter((p) => p.y !== null)).toHaveLength(3);
    view.rerender(<MetricsChart {...props} paused={false} />);
    await waitFor(() => expect(chart.data.datasets[0].data.filter((p) => p.y !== null)).toHaveLength(7), { timeout: 10_000 });
  });

  it('adds a dataset when the metric list grows, keeping the existing ones', () => {
    const { chart, view, props } = renderChart();
    const first = chart.data.datasets[0];
    view.rerender(<MetricsChart {...props} metrics={['memory_usage', 'swap_usage', 'disk_usage']} />);
    expect(chart.data.datasets.map((d) => d.metric)).toEqual(['memory_usage', 'swap_usage', 'disk_usage']);
    expect(chart.data.datasets[0]).toBe(first);
  });

  it('shows the newest samples in the data table when opened', async () => {
    const { store } = renderChart();
    act(() => {
      fill(store, 0, 2);
      store.notify();
    });
    const details = screen.getByText('Data table').closest('details') as HTMLDetailsElement;
    details.open = true;
    fireEvent(details, new Event('toggle'));
    await waitFor(() => expect(screen.getAllByRole('row').length).toBe(4), { timeout: 10_000 });
    const rows = screen.getAllByRole('row');
    expect(rows[1].textContent).toContain('42.0 %');
  });

  it('hides a series from the legend and shows it again', () => {
    const { chart } = renderChart();
    const toggle = screen.getAllByRole('button', { pressed: true })[1];
    fireEvent.click(toggle);
    expect(chart.data.datasets.map((d) => d.hidden)).toEqual([false, true]);
    fireEvent.click(toggle);
    expect(chart.data.datasets.map((d) => d.hidden)).toEqual([false, false]);
  });

  it('draws a past range from one history query sized to the chart, with min/max bands', async () => {
    const loadHistory = vi.fn().mockResolvedValue({
      series: { memory_usage: [{ x: T0, y: 40, min: 30, max: 55 }, { x: T0 + 60_000, y: 42, min: 41, max: 43 }] },
      bucketMs: 60_000,
      tier: '1m',
    });
    const { chart } = renderChart({ explore: explore({ span: { from: T0, to: T0 + 3_600_000 }, loadHistory, maxPoints: 5000 }) });
    await waitFor(() => expect(chart.data.datasets[0].data.filter((p) => p.y !== null)).toHaveLength(2), { timeout: 10_000 });
    expect(loadHistory).toHaveBeenCalledTimes(1);
    expect(loadHistory.mock.calls[0][0]).toMatchObject({ metrics: ['memory_usage', 'swap_usage'], from: T0, to: T0 + 3_600_000, maxPoints: 600, host: 'web-1' });
    const opts = (chart as unknown as { options: { plugins: { bands: { bands: unknown[]; maxGapMs: number } } } }).options;
    expect(opts.plugins.bands.maxGapMs).toBe(150_000);
    expect(opts.plugins.bands.bands[0]).toEqual([{ x: T0, min: 30, max: 55 }, { x: T0 + 60_000, min: 41, max: 43 }]);
    expect(screen.getByTestId('range-memory').textContent).toContain('1 min buckets');
    expect(screen.getByTestId('export-csv-memory').getAttribute('href')).toBe(`csv:memory_usage,swap_usage:${T0}:${T0 + 3_600_000}:600`);
  });

  it('shows the server error inside the chart when the range is refused', async () => {
    const loadHistory = vi.fn().mockRejectedValue(Object.assign(new Error("history: the range may span at most 30 days"), { code: 'too_large' }));
    renderChart({ explore: explore({ span: { from: T0 - 400 * 86_400_000, to: T0 }, loadHistory }) });
    const alert = await screen.findByRole('alert', {}, { timeout: 10_000 });
    expect(alert.textContent).toContain('the range may span at most 30 days');
    expect(screen.queryByTestId('loading-memory')).toBeNull();
  });

  it('finds the point nearest a time, skipping break markers', () => {
    const data = [{ x: 0, y: 1 }, { x: 10, y: null }, { x: 20, y: 3 }, { x: 30, y: 4 }];
    expect(nearestIndex(data, 9)).toBe(0);
    expect(nearestIndex(data, 16)).toBe(2);
    expect(nearestIndex(data, 99)).toBe(3);
    expect(nearestIndex([], 5)).toBe(-1);
  });
});

function explore(over: Record<string, unknown>) {
  return {
    span: null,
    host: 'web-1',
    maxPoints: null,
    loadHistory: vi.fn(),
    crosshair: createCrosshair((fn) => fn()),
    annotations: [],
    onZoom: vi.fn(),
    onPan: vi.fn(),
    onBackToLive: vi.fn(),
    onOpenAnnotation: vi.fn(),
    exportHref: (fmt: string, metrics: string[], from: number, to: number, points: number) => `${fmt}:${metrics.join(',')}:${from}:${to}:${points}`,
    ...over,
  };
}
