// window.__dashd: published while a dashboard is mounted, withdrawn after,
// and mergeSeries loads a test's data into the real series store.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createSeriesStore } from '../services/seriesStore';
import { createDiagnostics, installDiagnostics, type DiagnosticsChart } from './dashdDiagnostics';

const profiler = { setMeasuring: vi.fn(), stats: vi.fn(), samples: vi.fn(), reset: vi.fn() };

function make(charts = new Map<string, DiagnosticsChart>()) {
  const store = createSeriesStore();
  const api = createDiagnostics({
    store,
    profiler,
    charts,
    lastSeq: () => 41,
    ack: () => ({ interval: 2, metrics: [{ name: 'cpu_usage', unit: '%' }] }),
  });
  return { store, api };
}

afterEach(() => {
  delete window.__dashd;
});

describe('dashd diagnostics', () => {
  it('is published on install and withdrawn by the returned function', () => {
    const { api } = make();
    const uninstall = installDiagnostics(api);
    expect(window.__dashd).toBe(api);
    uninstall();
    expect(window.__dashd).toBeUndefined();
  });

  it('does not withdraw a newer dashboard\'s diagnostics', () => {
    const first = make().api;
    const second = make().api;
    const uninstallFirst = installDiagnostics(first);
    installDiagnostics(second);
    uninstallFirst();
    expect(window.__dashd).toBe(second);
  });

  it('merges test series into the store and describes the data to generate', () => {
    const { api, store } = make();
    const t0 = Date.parse('2026-11-26T10:00:00.000Z');
    store.appendSample({ t: t0, seq: 1, host: 'web-1', values: { cpu_usage: 10 } });
    expect(api.dataShape()).toEqual({ names: ['cpu_usage'], units: { cpu_usage: '%' }, intervalMs: 2000, newest: t0 });
    const points = api.mergeSeries({ cpu_usage: [{ x: t0 - 4000, y: 5 }, { x: t0 - 2000, y: 6 }] }, 2000);
    expect(points).toBe(3);
    expect(api.seqs()).toEqual([1]);
    expect(api.lastSeq()).toBe(41);
  });

  it('snapshots a chart: range, datasets, break markers, outages, crosshair and plot area', () => {
    const chart: DiagnosticsChart = {
      options: { scales: { x: { min: 0, max: 10 } }, plugins: { outages: { spans: [[2, 3]] }, crosshair: { x: 4 } } },
      chartArea: { left: 40, right: 600, top: 8, bottom: 220 },
      data: { datasets: [{ metric: 'cpu_usage', data: [{ x: 1, y: 1 }, { x: 2, y: null }, { x: 4, y: 2 }] }] },
      update: vi.fn(),
    };
    const { api } = make(new Map([['cpu', chart]]));
    expect(api.charts()).toEqual(['cpu']);
    expect(api.chart('cpu')).toEqual({
      xMin: 0,
      xMax: 10,
      datasets: [{ metric: 'cpu_usage', points: 3, drawn: 3 }],
      breaks: [[2]],
      outages: [[2, 3]],
      crosshair: 4,
      area: { left: 40, right: 600, top: 8, bottom: 220 },
    });
    expect(api.chart('nope')).toBeNull();
    api.fullRedrawMs(2);
    expect(chart.update).toHaveBeenCalledTimes(2);
  });
});
