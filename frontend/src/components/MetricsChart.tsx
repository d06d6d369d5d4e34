// A line chart for a group of metrics, live or over a past range.
//
// The Chart.js instance lives in a ref: created once on mount, destroyed on
// unmount, and redrawn in place with chart.update('none'). Two sources:
// - live (no `explore.span`): the series store, redrawn whenever it flushes
//   (at most once per animation frame, and once per pixel's worth of time);
//   each draw hands Chart.js a fresh copy of the data with a break marker in
//   every gap (services/gaps.ts), so a paused chart keeps its frozen arrays;
// - a range (`explore.span`): one `history` query for about as many points
//   as the plot is wide, drawn with the min/max band of each merged bucket,
//   with its own loading and error states. The live stream keeps filling the
//   store underneath and does not move this chart.
// Pointer handling: hover sets the shared
// crosshair (every chart shows its values at that moment), drag selects a
// range to zoom all charts to, shift-drag pans, double-click goes back to
// live, a marker shows its notification's title and opens it on click.

import { memo, useCallback, useEffect, useId, useLayoutEffect, useRef, useState, type PointerEvent as ReactPointerEvent } from 'react';
import type { ActiveElement, ChartDataset } from 'chart.js';
import { Chart, annotationAt, applyTheme, datasetStyle, lineChartOptions, type ChartAnnotation, type MetricDatasetExtras, type ThemeName } from './chartSetup';
import ChartLegend, { type LegendStats } from './ChartLegend';
import { DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS } from '../services/constants';
import { formatClock, formatMetric } from '../services/format';
import { GAP_INTERVALS, extendBreaks, observedStepMs, rangeStats, withBreaks, type BreaksCache, type GapPoint, type OutageLog } from '../services/gaps';
import { formatRate } from '../services/units';
import { pointCountFor, spanLabel, type Span } from '../services/timeRange';
import type { SeriesStore } from '../services/seriesStore';
import type { HistoryBands } from '../protocol/parse';
import type { Crosshair } from '../services/crosshair';
import type { HistoryRequest } from '../hooks/useDashboardStream';
import { pointClickHandler } from './host/chartClick';
import { createDrawQueue } from '../services/drawQueue';

const X_STEP_MS: ReadonlyArray<readonly [number, number]> = [
  [MINUTE_MS, 10 * SECOND_MS],
  [5 * MINUTE_MS, MINUTE_MS],
  [15 * MINUTE_MS, 3 * MINUTE_MS],
  [HOUR_MS, 10 * MINUTE_MS],
  [6 * HOUR_MS, HOUR_MS],
  [DAY_MS, 3 * HOUR_MS],
];

function xStepFor(windowMs: number): number | undefined {
  return X_STEP_MS.find(([w]) => windowMs <= w)?.[1];
}

// Built once: toLocaleString with options builds a new formatter per call,
// which on a range change was a third of the redraw (ticks and range labels).
/** A day tick on the axis of a range longer than two days ("Dec 7"). */
const DAY_LABEL = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
/** A range end with its date ("Dec 7, 14:05"). */
const RANGE_END_LABEL = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** The charts' history redraws and crosshair repaints, spread over frames (services/drawQueue.ts). */
const chartDraws = createDrawQueue();

/** Past its due time, a throttled redraw waits this long for the next flush. */
const TRAILING_GRACE_MS = 1000;
/** Legend statistics and the accessible summary refresh at most this often. */
const STATS_EVERY_MS = 1000;
/** Data that starts this far (share of the window) right of the left edge gets "data since". */
const DATA_SINCE_SHARE = 0.05;
/** Rows in the data-table alternative (newest samples). */
const TABLE_ROWS = 12;
/** A pointer moved less than this (px) between down and up is a click, not a drag. */
const DRAG_MIN_PX = 5;

/** Charts redraw in different frames when throttled (a stable phase per id). */
function phaseOf(id: string): number {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return (h % 97) / 97;
}

/** Values in the chart's unit: bits/s are bytes/s × 8. */
function factorOf(unit: string): number {
  return unit === 'bit/s' ? 8 : 1;
}

export function valueFormatter(unit: string): (v: number) => string {
  if (unit === 'bit/s') return (v) => formatRate(v / 8, 'bit/s');
  if (unit === 'B/s') return (v) => formatRate(v, 'B/s');
  return (v) => formatMetric(v, unit);
}

/** Index of the point in `data` (sorted by x) nearest to `x` with a value, or -1. */
export function nearestIndex(data: readonly GapPoint[], x: number): number {
  let lo = 0;
  let hi = data.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (data[mid].x < x) lo = mid + 1;
    else hi = mid;
  }
  let best = -1;
  let bestDist = Infinity;
  for (let i = Math.max(0, lo - 2); i < Math.min(data.length, lo + 2); i += 1) {
    if (data[i].y === null) continue;
    const d = Math.abs(data[i].x - x);
    if (d < bestDist) {
      best = i;
      bestDist = d;
    }
  }
  return best;
}

/** What a chart needs to explore the past (absent: a plain live chart). */
export interface ChartExplore {
  /** The range drawn from `history`; null: the live buffer. */
  span: Span | null;
  host: string | null;
  /** The server's `max_history_points`, if known. */
  maxPoints: number | null;
  loadHistory(req: HistoryRequest): Promise<HistoryBands>;
  crosshair: Crosshair;
  annotations: readonly ChartAnnotation[];
  onZoom(from: number, to: number): void;
  /** Move the view by `deltaMs` (negative: earlier). */
  onPan(deltaMs: number, from: number, to: number): void;
  onBackToLive(): void;
  onOpenAnnotation(id: string): void;
  /** `/api/export` address for these metrics over from/to, in `points` buckets (the chart's own query). */
  exportHref(format: 'csv' | 'json', metrics: readonly string[], from: number, to: number, points: number): string;
}

export interface MetricsChartProps {
  id: string;
  title: string;
  unit: string;
  yMax?: number;
  metrics: readonly string[];
  labels?: Readonly<Record<string, string>>;
  store: SeriesStore;
  /** The live window (ms). */
  windowMs: number;
  paused: boolean;
  theme: ThemeName;
  registry?: Map<string, unknown> | null;
  gapMs?: number;
  outages?: OutageLog | null;
  explore?: ChartExplore | null;
  /** A click (not a drag) on the plot: the time under it (the CPU and memory charts open the processes then). */
  onPointClick?: ((timeMs: number) => void) | null;
}

type MetricDataset = ChartDataset<'line', GapPoint[]> & MetricDatasetExtras & { $breaks?: BreaksCache };
type LineChart = Chart<'line', GapPoint[]>;

interface View {
  stats: Record<string, LegendStats>;
  oldest: number | null;
  xMin: number | null;
  xMax: number | null;
  table: Array<[number, Record<string, number | null>]>;
}

type Status = { state: 'idle' } | { state: 'loading' } | { state: 'error'; message: string } | { state: 'ready'; tier: string | null; bucketMs: number };

interface LiveState {
  metrics: readonly string[];
  windowMs: number;
  paused: boolean;
  pausedAt: number | null;
  dirty: boolean;
  lastDrawAt: number;
  trailing: ReturnType<typeof setTimeout> | null;
  gapMs: number;
  lastStatsAt: number;
  statsTimer: ReturnType<typeof setTimeout> | null;
  /** Drawing a past range: the store does not move the chart. */
  span: Span | null;
  history: HistoryBands | null;
  /** What the datasets were last built from, so a range change alone only moves the axis. */
  built: { history: HistoryBands | null; factor: number; datasets: unknown } | null;
  drag: { startPx: number; startX: number; pan: boolean; moved: boolean; pointerId: number } | null;
  /** The click that ends a drag is not a click on a point. */
  dragged: boolean;
}

function axisOf(chart: LineChart) {
  return chart.options.scales!.x as { min?: number; max?: number; ticks: { stepSize?: number; callback?: (v: number | string) => string } };
}

function MetricsChart({ id, title, unit, yMax, metrics, labels, store, windowMs, paused, theme, registry, gapMs = 2500, outages, explore, onPointClick = null }: MetricsChartProps) {
  const canvasRef = useRef<HTMLCanvasElement | null>(null);
  const chartRef = useRef<LineChart | null>(null);
  const headingId = useId();
  const summaryId = useId();
  const [hidden, setHidden] = useState<Set<string>>(() => new Set());
  const [view, setView] = useState<View>({ stats: {}, oldest: null, xMin: null, xMax: null, table: [] });
  const [tableOpen, setTableOpen] = useState(false);
  const [status, setStatus] = useState<Status>({ state: 'idle' });
  const [hover, setHover] = useState<{ note: ChartAnnotation; px: number } | null>(null);
  // Everything the draw callback reads, so the store subscription is made once.
  const live = useRef<LiveState>({
    metrics, windowMs, paused, pausedAt: null, dirty: false, lastDrawAt: -Infinity, trailing: null, gapMs,
    lastStatsAt: -Infinity, statsTimer: null, span: explore?.span ?? null, history: null, built: null, drag: null, dragged: false,
  });
  const exploreRef = useRef(explore);
  useLayoutEffect(() => {
    live.current.gapMs = gapMs;
    exploreRef.current = explore;
  });

  const publishView = (chart: LineChart, xMin: number, xMax: number) => {
    const stats: Record<string, LegendStats> = {};
    let oldest = Infinity;
    const datasets = chart.data.datasets as MetricDataset[];
    for (const ds of datasets) {
      const st = rangeStats(ds.data, xMin, xMax);
      if (st) stats[ds.metric] = st;
      const first = ds.data.find((p) => p.y !== null && p.x >= xMin);
      if (first && first.x < oldest) oldest = first.x;
    }
    const rows = new Map<number, Record<string, number | null>>();
    for (const ds of datasets) {
      // The newest TABLE_ROWS real points, walking back (no copy of the series).
      const pts: GapPoint[] = [];
      for (let i = ds.data.length - 1; i >= 0 && pts.length < TABLE_ROWS; i -= 1) if (ds.data[i].y !== null && ds.data[i].x <= xMax) pts.push(ds.data[i]);
      for (const p of pts) {
        const row = rows.get(p.x) ?? {};
        row[ds.metric] = p.y;
        rows.set(p.x, row);
      }
    }
    const table = [...rows.entries()].sort((a, b) => b[0] - a[0]).slice(0, TABLE_ROWS);
    setView({ stats, oldest: Number.isFinite(oldest) ? oldest : null, xMin, xMax, table });
  };

  const publishSoon = (chart: LineChart, now: number, force: boolean) => {
    const s = live.current;
    const x = axisOf(chart);
    if (force || now - s.lastStatsAt >= STATS_EVERY_MS) {
      if (s.statsTimer) clearTimeout(s.statsTimer);
      s.statsTimer = null;
      s.lastStatsAt = now;
      publishView(chart, x.min ?? 0, x.max ?? 0);
    } else if (!s.statsTimer) {
      // The last draw of a burst still reaches the legend, a little later.
      s.statsTimer = setTimeout(() => {
        s.statsTimer = null;
        const c = chartRef.current;
        if (!c) return;
        s.lastStatsAt = performance.now();
        const cx = axisOf(c);
        publishView(c, cx.min ?? 0, cx.max ?? 0);
      }, STATS_EVERY_MS - (now - s.lastStatsAt));
    }
  };

  /**
   * Draws the fetched range (history buckets with their bands), once per
   * reply. A new range alone (zoom, pan) only records the axis: the chart
   * keeps the previous picture until the range's own reply arrives, so a
   * zoom costs every chart one Chart.js update (when its data lands, in its
   * own frame) rather than two, the first of them all five in one frame.
   */
  const drawHistory = () => {
    const chart = chartRef.current;
    const s = live.current;
    if (!chart || !s.span) return;
    const x = axisOf(chart);
    x.min = s.span.from;
    x.max = s.span.to;
    const factor = factorOf(unit);
    const history = s.history;
    const datasets = chart.data.datasets as MetricDataset[];
    const built = s.built;
    const plugins = chart.options.plugins!;
    if (built && built.history === history && built.factor === factor && built.datasets === datasets) return;
    const maxGap = GAP_INTERVALS * Math.max(history?.bucketMs ?? 0, 1);
    const merged = (history?.bucketMs ?? 0) > 0;
    const bands = datasets.map((ds) => {
      const pts = history?.series[ds.metric] ?? [];
      ds.data = withBreaks(pts.map((p) => ({ x: p.x, y: p.y * factor })), maxGap);
      ds.$breaks = undefined;
      return merged ? pts.map((p) => ({ x: p.x, min: p.min * factor, max: p.max * factor })) : null;
    });
    if (plugins.bands) {
      plugins.bands.bands = bands;
      plugins.bands.maxGapMs = maxGap;
    }
    s.built = { history, factor, datasets };
    if (outages && plugins.outages) plugins.outages.spans = outages.spans();
    chart.update('none');
    publishSoon(chart, performance.now(), true);
  };

  const draw = (force = false) => {
    const chart = chartRef.current;
    const s = live.current;
    if (!chart) return;
    if (s.span) {
      if (force) drawHistory();
      return;
    }
    if (!force && (s.paused || (typeof document !== 'undefined' && document.hidden))) {
      s.dirty = true;
      return;
    }
    // New data moves a long window by less than a pixel per sample: redraw at
    // most once per pixel's worth of time (1 h on 700 px: every ~5 s; 1 min:
    // every flush). The redraw then happens in a later flush; the trailing
    // timer only matters when the stream stalls, so the last update shows.
    const now = performance.now();
    const pixelMs = s.windowMs / Math.max(100, chart.chartArea?.width || chart.width || 600);
    if (!force && now - s.lastDrawAt < pixelMs) {
      if (s.trailing === null) {
        s.trailing = setTimeout(() => {
          s.trailing = null;
          draw();
        }, pixelMs - (now - s.lastDrawAt) + TRAILING_GRACE_MS);
      }
      return;
    }
    if (s.trailing) clearTimeout(s.trailing);
    s.trailing = null;
    s.lastDrawAt = force ? now - phaseOf(id) * pixelMs : now;
    s.dirty = false;
    const newest = store.newestTime();
    // An empty store (just cleared) still redraws, so no stale lines remain.
    const xMax = s.pausedAt ?? (Number.isFinite(newest) ? newest : Date.now());
    const x = axisOf(chart);
    x.min = xMax - s.windowMs;
    x.max = xMax;
    const factor = factorOf(unit);
    // A paused chart keeps the array it has: only a forced draw (window change) replaces it.
    const fresh = s.paused;
    // The expected step, widened by history buckets and by the spacing the
    // data really has (an admin elsewhere may have slowed the collection).
    const datasets = chart.data.datasets as MetricDataset[];
    const first = datasets[0] ? store.get(datasets[0].metric) : [];
    const maxGap = Math.max(s.gapMs, GAP_INTERVALS * (store.bucketMs?.() || 0), GAP_INTERVALS * observedStepMs(first));
    datasets.forEach((ds) => {
      if (fresh || !ds.$breaks) ds.$breaks = {};
      ds.data = extendBreaks(ds.$breaks, store.get(ds.metric), maxGap, factor);
    });
    const plugins = chart.options.plugins!;
    if (plugins.bands) plugins.bands.bands = [];
    s.built = null;
    if (outages && plugins.outages) plugins.outages.spans = outages.spans();
    chart.update('none');
    publishSoon(chart, now, force);
  };

  /** Shows the crosshair and every dataset's value at time `t` (null: none). */
  const showCrosshair = (t: number | null) => {
    const chart = chartRef.current;
    if (!chart) return;
    const plugins = chart.options.plugins!;
    if (plugins.crosshair) plugins.crosshair.x = t;
    const elements: ActiveElement[] = [];
    if (t !== null) {
      (chart.data.datasets as MetricDataset[]).forEach((ds, datasetIndex) => {
        if (ds.hidden) return;
        const index = nearestIndex(ds.data, t);
        if (index >= 0) elements.push({ datasetIndex, index } as unknown as ActiveElement);
      });
    }
    const x = chart.scales?.x;
    try {
      chart.setActiveElements?.(elements);
      chart.tooltip?.setActiveElements?.(elements, { x: x && t !== null ? x.getPixelForValue(t) : 0, y: chart.chartArea?.top ?? 0 });
    } catch {
      // Chart not laid out yet (no size): nothing to show.
    }
    // Only the overlay moved: repaint without Chart.js's layout and data pass.
    chart.draw();
  };

  // Create once. A layout effect declared first, so the chart exists before
  // the effects below configure it (layout effects run in order, before paint).
  useLayoutEffect(() => {
    const chart = new Chart(canvasRef.current as HTMLCanvasElement, {
      type: 'line',
      data: { datasets: [] },
      options: lineChartOptions({ unit, yMax, theme, windowMs }),
    }) as LineChart;
    chartRef.current = chart;
    registry?.set(id, chart);
    const unsubscribe = store.subscribe(() => draw());
    // Five full repaints in the frame the pointer moved in made it a long
    // one: each chart repaints its crosshair in a coming frame, within the budget.
    const crosshairKey = {};
    const unfollow = exploreRef.current?.crosshair.subscribe((t) => chartDraws.schedule(crosshairKey, () => showCrosshair(t))) ?? (() => {});
    const onVisible = () => {
      if (!document.hidden && live.current.dirty) draw();
    };
    document.addEventListener('visibilitychange', onVisible);
    // The ref holds one mutable object for the chart's life; the cleanup
    // clears the timers of that same object.
    const state = live.current;
    return () => {
      unsubscribe();
      unfollow();
      chartDraws.cancel(crosshairKey);
      if (state.trailing) clearTimeout(state.trailing);
      if (state.statsTimer) clearTimeout(state.statsTimer);
      state.trailing = null;
      state.statsTimer = null;
      document.removeEventListener('visibilitychange', onVisible);
      registry?.delete(id);
      chart.destroy();
      chartRef.current = null;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- created once; props flow in through the effects below
  }, []);

  // Keep datasets in step with the metric list (cores appear with the catalogue).
  const metricsKey = metrics.join(',');
  useLayoutEffect(() => {
    const chart = chartRef.current;
    if (!chart) return;
    const byMetric = new Map((chart.data.datasets as MetricDataset[]).map((ds) => [ds.metric, ds]));
    chart.data.datasets = metrics.map((name, i) => {
      const existing = byMetric.get(name);
      if (existing) return existing;
      const secondary = i > 0 && metrics.length > 3;
      const ds: MetricDataset = { metric: name, label: labels?.[name] || name, data: [], secondary, hidden: hidden.has(name), ...datasetStyle(i, theme, { secondary }) };
      return ds;
    });
    live.current.metrics = metrics;
    draw(true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [metricsKey]);

  const spanFrom = explore?.span?.from ?? null;
  const spanTo = explore?.span?.to ?? null;
  useLayoutEffect(() => {
    const chart = chartRef.current;
    const s = live.current;
    s.windowMs = windowMs;
    s.span = spanFrom !== null && spanTo !== null ? { from: spanFrom, to: spanTo } : null;
    if (paused && !s.paused) s.pausedAt = store.newestTime();
    if (!paused) s.pausedAt = null;
    s.paused = paused;
    if (!chart) return;
    const shown = s.span ? s.span.to - s.span.from : windowMs;
    const long = shown > 10 * MINUTE_MS;
    const days = shown > 2 * DAY_MS;
    const x = axisOf(chart);
    x.ticks.stepSize = xStepFor(shown);
    x.ticks.callback = (v) => (days ? DAY_LABEL.format(Number(v)) : formatClock(Number(v), !long));
    // Redraw even while paused so a window change shows at once.
    draw(true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [windowMs, paused, gapMs, spanFrom, spanTo]);

  // A range: one `history` query for as many points as the plot is wide.
  const host = explore?.host ?? null;
  const maxPoints = explore?.maxPoints ?? null;
  const loadHistory = explore?.loadHistory;
  useEffect(() => {
    if (spanFrom === null || spanTo === null || !loadHistory) {
      setStatus({ state: 'idle' });
      live.current.history = null;
      return undefined;
    }
    let current = true;
    const chart = chartRef.current;
    const width = chart?.chartArea?.width || chart?.width || canvasRef.current?.clientWidth || 600;
    setStatus({ state: 'loading' });
    const state = live.current;
    loadHistory({ metrics: metricsKey.split(','), from: spanFrom, to: spanTo, maxPoints: pointCountFor(width, maxPoints), host }).then(
      (bands) => {
        if (!current) return;
        // Drawn in a coming frame, shared with the other charts' replies;
        // the chart says it is loading until then.
        chartDraws.schedule(state, () => {
          if (!current) return;
          state.history = bands;
          setStatus({ state: 'ready', tier: bands.tier, bucketMs: bands.bucketMs });
          drawHistory();
        });
      },
      (err: unknown) => {
        if (!current) return;
        const e = (err && typeof err === 'object' ? err : {}) as { message?: string; code?: string };
        state.history = null;
        setStatus({ state: 'error', message: e.message || e.code || 'the query failed' });
        drawHistory();
      },
    );
    return () => {
      current = false;
      chartDraws.cancel(state);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- drawHistory reads refs only
  }, [spanFrom, spanTo, metricsKey, host, maxPoints, loadHistory]);

  useLayoutEffect(() => {
    const chart = chartRef.current;
    if (!chart) return;
    applyTheme(chart, theme);
    chart.update('none');
  }, [theme]);

  // Annotation markers follow the list the dashboard hands in.
  const annotations = explore?.annotations;
  useLayoutEffect(() => {
    const chart = chartRef.current;
    const plugins = chart?.options.plugins;
    if (!chart || !plugins?.annotations) return;
    plugins.annotations.items = annotations ? [...annotations] : [];
    // The markers are an overlay: a repaint, not a layout and data pass.
    chart.draw();
  }, [annotations]);

  // Hidden series: Chart.js skips a dataset with `hidden`; redraw in place.
  const hiddenKey = [...hidden].join(',');
  useLayoutEffect(() => {
    const chart = chartRef.current;
    if (!chart) return;
    (chart.data.datasets as MetricDataset[]).forEach((ds) => {
      ds.hidden = hidden.has(ds.metric);
    });
    chart.update('none');
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [hiddenKey]);

  // -- pointer: crosshair, zoom, pan, markers ------------------------------------

  const pointerAt = useCallback((e: { clientX: number }) => {
    const chart = chartRef.current;
    const canvas = canvasRef.current;
    const x = chart?.scales?.x;
    if (!chart || !canvas || !x) return null;
    const px = e.clientX - canvas.getBoundingClientRect().left;
    return { chart, px, t: x.getValueForPixel(px) ?? NaN, msPerPx: (x.max - x.min) / Math.max(1, x.width) };
  }, []);

  const onPointerDown = (e: ReactPointerEvent<HTMLCanvasElement>) => {
    const at = pointerAt(e);
    if (!at || e.button !== 0 || e.pointerType === 'touch' || !exploreRef.current) return;
    live.current.drag = { startPx: at.px, startX: at.t, pan: e.shiftKey, moved: false, pointerId: e.pointerId };
    e.currentTarget.setPointerCapture?.(e.pointerId);
  };

  const onPointerMove = (e: ReactPointerEvent<HTMLCanvasElement>) => {
    const at = pointerAt(e);
    const ex = exploreRef.current;
    if (!at || !ex) return;
    const drag = live.current.drag;
    if (drag) {
      drag.moved ||= Math.abs(at.px - drag.startPx) >= DRAG_MIN_PX;
      const crosshair = at.chart.options.plugins?.crosshair;
      if (crosshair && !drag.pan && drag.moved) {
        crosshair.selection = { from: drag.startX, to: at.t };
        at.chart.draw();
      }
      return;
    }
    ex.crosshair.set(Number.isFinite(at.t) ? at.t : null);
    const note = annotationAt(at.chart, at.px);
    setHover((h) => (note ? (h?.note.id === note.id ? h : { note, px: at.px }) : null));
    const notes = at.chart.options.plugins?.annotations;
    if (notes && notes.hovered !== (note?.id ?? null)) notes.hovered = note?.id ?? null;
  };

  const onPointerUp = (e: ReactPointerEvent<HTMLCanvasElement>) => {
    const at = pointerAt(e);
    const ex = exploreRef.current;
    const drag = live.current.drag;
    live.current.drag = null;
    if (!at || !ex || !drag) return;
    const crosshair = at.chart.options.plugins?.crosshair;
    if (crosshair) crosshair.selection = null;
    at.chart.draw();
    live.current.dragged = drag.moved;
    if (!drag.moved) return; // a click: onClick below
    const x = axisOf(at.chart);
    if (drag.pan) ex.onPan((drag.startPx - at.px) * at.msPerPx, x.min ?? 0, x.max ?? 0);
    else ex.onZoom(drag.startX, at.t);
  };

  /** A click (not the end of a drag): a marker opens its notification, else the time goes to onPointClick. */
  const onClick = (e: ReactPointerEvent<HTMLCanvasElement> | { clientX: number; currentTarget: HTMLCanvasElement }) => {
    if (live.current.dragged) {
      live.current.dragged = false;
      return;
    }
    const at = pointerAt(e);
    const note = at ? annotationAt(at.chart, at.px) : null;
    if (note) exploreRef.current?.onOpenAnnotation(note.id);
    else pointClickHandler(() => chartRef.current, onPointClick)?.(e);
  };

  const onPointerLeave = () => {
    if (live.current.drag) return;
    exploreRef.current?.crosshair.set(null);
    setHover(null);
  };

  const toggle = (metric: string) =>
    setHidden((h) => {
      const next = new Set(h);
      if (next.has(metric)) next.delete(metric);
      else next.add(metric);
      return next;
    });
  const isolate = (metric: string) =>
    setHidden((h) => {
      const onlyThis = metrics.every((m) => m === metric || h.has(m)) && !h.has(metric);
      return onlyThis ? new Set() : new Set(metrics.filter((m) => m !== metric));
    });

  const format = valueFormatter(unit);
  const ranged = spanFrom !== null && spanTo !== null;
  const shownMs = ranged ? (spanTo as number) - (spanFrom as number) : windowMs;
  const windowLabel = spanLabel(windowMs);
  const rangeText = ranged ? `${formatRangeEnd(spanFrom as number, shownMs)} – ${formatRangeEnd(spanTo as number, shownMs)}` : `last ${windowLabel}`;
  const colors = chartRef.current ? Object.fromEntries((chartRef.current.data.datasets as MetricDataset[]).map((ds) => [ds.metric, String(ds.borderColor)])) : {};
  const series = metrics.map((m) => ({ metric: m, label: labels?.[m] || m, color: colors[m] }));
  const hasData = view.oldest !== null;
  const partial = hasData && view.xMin !== null && (view.oldest as number) - view.xMin > shownMs * DATA_SINCE_SHARE;
  const coverage = !hasData ? 'no data in this window yet' : partial ? `data since ${formatRangeEnd(view.oldest as number, shownMs)}` : null;
  const summary = series
    .filter((s) => !hidden.has(s.metric) && view.stats[s.metric])
    .map((s) => {
      const st = view.stats[s.metric];
      return `${s.label}: min ${format(st.min)}, average ${format(st.avg)}, max ${format(st.max)}`;
    })
    .join('; ');
  const visibleNotes = (annotations ?? []).filter((a) => view.xMin !== null && view.xMax !== null && a.t >= view.xMin && a.t <= view.xMax);
  const exportLink = (fmt: 'csv' | 'json') => {
    const ex = explore;
    if (!ex) return '';
    const from = ranged ? (spanFrom as number) : (view.xMin ?? Date.now() - windowMs);
    const to = ranged ? (spanTo as number) : (view.xMax ?? Date.now());
    const chart = chartRef.current;
    const width = chart?.chartArea?.width || chart?.width || 600;
    return ex.exportHref(fmt, metrics, from, to, pointCountFor(width, ex.maxPoints));
  };
  return (
    <figure className="chart-card" data-testid={`chart-${id}`} aria-labelledby={headingId} aria-busy={status.state === 'loading'}>
      <figcaption className="chart-head">
        <h3 id={headingId}>{title}</h3>
        <span className="chart-window" data-testid={`range-${id}`}>
          {rangeText}
          {paused && !ranged ? ' · paused' : ''}
          {status.state === 'ready' && status.bucketMs > 0 ? ` · ${spanLabel(status.bucketMs)} buckets` : ''}
          {coverage && status.state !== 'error' ? <span className="chart-coverage" data-testid={`coverage-${id}`}> · {coverage}</span> : null}
        </span>
        {explore ? (
          <span className="chart-downloads">
            {(['csv', 'json'] as const).map((fmt) => (
              <a
                key={fmt}
                className="btn btn-small"
                href={exportLink(fmt)}
                download
                data-testid={`export-${fmt}-${id}`}
                aria-label={`Download ${title} as ${fmt.toUpperCase()}`}
                onClick={(e) => {
                  e.currentTarget.href = exportLink(fmt);
                }}
              >
                {fmt.toUpperCase()}
              </a>
            ))}
          </span>
        ) : null}
      </figcaption>
      <div className="chart-body">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={`${title} chart, ${rangeText}`}
          aria-describedby={summaryId}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerLeave={onPointerLeave}
          onPointerCancel={onPointerLeave}
          onClick={onClick}
          onDoubleClick={() => exploreRef.current?.onBackToLive()}
          className={onPointClick ? 'is-clickable' : undefined}
        />
        {status.state === 'loading' && !hasData ? (
          // A refresh keeps the drawn data on screen (aria-busy says it is loading).
          <div className="chart-status" role="status" data-testid={`loading-${id}`}>Loading…</div>
        ) : null}
        {status.state === 'error' ? (
          <div className="chart-error" role="alert" data-testid={`error-${id}`}>
            Could not load this range: {status.message}
          </div>
        ) : null}
        {hover ? (
          <div className="chart-note-tip" role="tooltip" style={{ left: hover.px }} data-testid={`note-tip-${id}`}>
            {hover.note.title}
          </div>
        ) : null}
      </div>
      <p id={summaryId} className="sr-only" data-testid={`summary-${id}`}>
        {summary ? `${summary} over the visible range.` : coverage || ''}
        {coverage && summary ? ` ${coverage}.` : ''}
      </p>
      {visibleNotes.length ? (
        <ul className="chart-annotations" aria-label={`${title}: notifications in this range`}>
          {visibleNotes.map((a) => (
            <li key={a.id}>
              <button type="button" className={`note-marker note-${a.level}`} data-testid={`annotation-${id}`} data-id={a.id} onClick={() => explore?.onOpenAnnotation(a.id)}>
                {formatClock(a.t)} {a.title}
              </button>
            </li>
          ))}
        </ul>
      ) : null}
      <ChartLegend title={title} series={series} hidden={hidden} stats={view.stats} format={format} onToggle={toggle} onIsolate={isolate} />
      <details className="chart-table" onToggle={(e) => setTableOpen(e.currentTarget.open)}>
        <summary>Data table</summary>
        {tableOpen ? (
          <div className="table-wrap">
            <table>
              <caption className="sr-only">{title}: newest samples</caption>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  {series.map((s) => (
                    <th scope="col" key={s.metric}>{s.label}</th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {view.table.map(([t, values]) => (
                  <tr key={t}>
                    <th scope="row">{formatClock(t)}</th>
                    {series.map((s) => {
                      const v = values[s.metric];
                      return <td key={s.metric}>{typeof v === 'number' && Number.isFinite(v) ? format(v) : '—'}</td>;
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ) : null}
      </details>
    </figure>
  );
}

/** A range end: the date as well once the range spans more than a day. */
function formatRangeEnd(ms: number, spanMs: number): string {
  if (spanMs <= DAY_MS) return formatClock(ms, spanMs <= 10 * MINUTE_MS);
  return RANGE_END_LABEL.format(ms);
}

export default memo(MetricsChart);
