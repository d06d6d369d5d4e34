// MetricsChart: one Chart.js instance per chart, created once and redrawn in
// place from the series store; a paused chart keeps its frozen data; the
// accessible summary and data table follow the store. Chart.js is faked (jsdom
// has no canvas); the store is the real one.
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('chart.js', () => import('../test/chartDouble'));

const { FakeChart: Chart } = await import('../test/chartDouble');
const { default: MetricsChart } = await import('./MetricsChart');
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
});
