// Diagnostics for the browser tests and the frame-budget measurement:
// `window.__dashd` while a dashboard is mounted. Read-only views of the
// series store and the charts, the frame profiler, and `mergeSeries` so a
// test can load its own (synthetic) data; the generator of such data lives
// with the tests (e2e/lib/synthetic.mjs), not in the shipped bundle.

/** The parts of the series store the diagnostics read. */
export interface DiagnosticsStore {
  sampleSeqs(): number[];
  streamSeqs(): number[];
  pointCount(): number;
  newestTime(): number;
  names(): string[];
  get(name: string): unknown[];
  mergeHistory(series: Record<string, Array<{ x: number; y: number }>>, opts: { bucketMs: number }): void;
  trim(): void;
  notify(): void;
}

export interface DiagnosticsProfiler {
  setMeasuring(on: boolean): void;
  stats(): unknown;
  samples(): unknown;
  reset(): void;
}

interface ChartPoint {
  x: number;
  y: number | null;
}

interface ChartDataset {
  metric: string;
  data: ChartPoint[];
  _data?: ChartPoint[];
}

/** The parts of a Chart.js instance the diagnostics read. */
export interface DiagnosticsChart {
  options: { scales: { x: { min?: number; max?: number } }; plugins: { outages?: { spans?: unknown[] }; crosshair?: { x: number | null } } };
  /** The plot area inside the canvas (px), once laid out. */
  chartArea?: { left: number; right: number; top: number; bottom: number };
  data: { datasets: ChartDataset[] };
  tooltip?: { getActiveElements?: () => unknown[] };
  update(mode: string): void;
}

export interface DiagnosticsDeps {
  store: DiagnosticsStore;
  profiler: DiagnosticsProfiler;
  charts: Map<string, DiagnosticsChart>;
  lastSeq: () => number | null;
  /** The catalogue and collection interval of the current connection_ack. */
  ack: () => { interval?: number; metrics?: Array<{ name: string; unit: string }> } | null;
}

export interface ChartSnapshot {
  xMin: number | undefined;
  xMax: number | undefined;
  datasets: Array<{ metric: string; points: number; drawn: number }>;
  breaks: number[][];
  outages: unknown[];
  /** The shared crosshair's time on this chart, or null. */
  crosshair: number | null;
  /** The plot area inside the canvas (px), for tests that drag across it. */
  area: { left: number; right: number; top: number; bottom: number } | null;
}

export interface DashdDiagnostics {
  seqs(): number[];
  streamSeqs(): number[];
  lastSeq(): number | null;
  pointCount(): number;
  chart(id: string): ChartSnapshot | null;
  /** Tooltip items Chart.js shows now on a chart (hover tests). */
  tooltip(id: string): number;
  charts(): string[];
  /** Mean ms to redraw every chart at once (the worst frame), over `n` runs. */
  fullRedrawMs(n?: number): number;
  frames: { measure(on: boolean): void; stats(): unknown; samples(): unknown; reset(): void };
  /** What a test needs to generate data: series with data, units, interval, newest time. */
  dataShape(): { names: string[]; units: Record<string, string>; intervalMs: number; newest: number };
  /** Merge series ({name: [{x, y}]}) as history buckets; returns the store's point count. */
  mergeSeries(series: Record<string, Array<{ x: number; y: number }>>, bucketMs: number): number;
}

declare global {
  interface Window {
    __dashd?: DashdDiagnostics;
  }
}

export function createDiagnostics({ store, profiler, charts, lastSeq, ack }: DiagnosticsDeps): DashdDiagnostics {
  return {
    seqs: () => store.sampleSeqs(),
    streamSeqs: () => store.streamSeqs(),
    lastSeq: () => lastSeq(),
    pointCount: () => store.pointCount(),
    chart: (id) => {
      const c = charts.get(id);
      if (!c) return null;
      return {
        xMin: c.options.scales.x.min,
        xMax: c.options.scales.x.max,
        datasets: c.data.datasets.map((ds) => ({ metric: ds.metric, points: (ds._data || ds.data).length, drawn: ds.data.length })),
        // Break markers (null points) per dataset, and the shaded outages.
        breaks: c.data.datasets.map((ds) => (ds._data || ds.data).filter((p) => p.y === null).map((p) => p.x)),
        outages: c.options.plugins.outages?.spans || [],
        crosshair: c.options.plugins.crosshair?.x ?? null,
        area: c.chartArea ? { left: c.chartArea.left, right: c.chartArea.right, top: c.chartArea.top, bottom: c.chartArea.bottom } : null,
      };
    },
    tooltip: (id) => charts.get(id)?.tooltip?.getActiveElements?.().length ?? 0,
    charts: () => [...charts.keys()],
    fullRedrawMs: (n = 10) => {
      const start = performance.now();
      for (let i = 0; i < n; i += 1) for (const c of charts.values()) c.update('none');
      return (performance.now() - start) / n;
    },
    frames: {
      measure: (on) => profiler.setMeasuring(on),
      stats: () => profiler.stats(),
      samples: () => profiler.samples(),
      reset: () => profiler.reset(),
    },
    dataShape: () => {
      const a = ack();
      const newest = Number.isFinite(store.newestTime()) ? store.newestTime() : Date.now();
      return {
        names: store.names().filter((n) => store.get(n).length),
        units: Object.fromEntries((a?.metrics || []).map((m) => [m.name, m.unit])),
        intervalMs: (a?.interval || 1) * 1000,
        newest,
      };
    },
    mergeSeries: (series, bucketMs) => {
      store.mergeHistory(series, { bucketMs });
      store.trim();
      store.notify();
      return store.pointCount();
    },
  };
}

/** Publish `api` as window.__dashd; returns the function that withdraws it. */
export function installDiagnostics(api: DashdDiagnostics): () => void {
  window.__dashd = api;
  return () => {
    if (window.__dashd === api) delete window.__dashd;
  };
}
