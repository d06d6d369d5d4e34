// Chart.js registration (only what the line charts use, so the bundle stays
// small), the chart options shared by every chart, and the plugins that draw
// what Chart.js has no element for: known outages, the min/max band of merged
// history buckets, the shared crosshair, the zoom selection and annotation
// markers. Plugins read their state from `options.plugins.<id>`, which the
// chart component mutates in place before `chart.update('none')`.

import {
  Chart,
  Decimation,
  Filler,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Tooltip,
  type ChartOptions,
  type ChartType,
  type Plugin,
  type Scale,
} from 'chart.js';
import { SECOND_MS } from '../services/constants';
import { axisTitle, formatAxisTick, formatClock, formatMetric } from '../services/format';
import { formatRate, formatRateTick, rateTicks, type RateAxis } from '../services/units';
import type { Span } from '../services/gaps';

export type ThemeName = 'light' | 'dark' | string;

/** A merged history bucket's range, drawn as a band behind its line. */
export interface BandPoint {
  x: number;
  min: number;
  max: number;
}

/** A marker on the time axis (a notification or an alert state change). */
export interface ChartAnnotation {
  id: string;
  t: number;
  title: string;
  level: string;
}

export interface OutagesOptions {
  spans: Span[];
  color: string;
}
export interface BandsOptions {
  /** Per dataset index; null where the dataset draws raw samples. */
  bands: Array<BandPoint[] | null>;
  /** Buckets further apart than this are not joined (the line breaks there too). */
  maxGapMs: number;
}
export interface CrosshairOptions {
  /** The time under the pointer on any chart, or null. */
  x: number | null;
  color: string;
  /** A zoom being dragged: its two ends (ms), or null. */
  selection: { from: number; to: number } | null;
}
export interface AnnotationsOptions {
  items: ChartAnnotation[];
  /** The marker under the pointer (drawn thicker). */
  hovered: string | null;
}

declare module 'chart.js' {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- declaration merging repeats Chart.js's own type parameter
  interface PluginOptionsByType<TType extends ChartType> {
    outages: OutagesOptions;
    bands: BandsOptions;
    crosshair: CrosshairOptions;
    annotations: AnnotationsOptions;
  }
}

/** The dataset fields this dashboard adds to Chart.js's own. */
export interface MetricDatasetExtras {
  metric: string;
  secondary?: boolean;
}

/**
 * Shades known outages (options.plugins.outages.spans, [{from, to}] in ms)
 * behind the lines, so "the daemon was down here" is visible, not only a break.
 */
export const outagePlugin: Plugin<'line', OutagesOptions> = {
  id: 'outages',
  beforeDatasetsDraw(chart, _args, opts) {
    const spans = opts?.spans;
    const x = chart.scales?.x;
    const area = chart.chartArea;
    if (!spans?.length || !x || !area) return;
    const { ctx } = chart;
    ctx.save();
    ctx.fillStyle = opts.color || 'rgba(148, 163, 184, 0.25)';
    for (const s of spans) {
      if (s.to < x.min || s.from > x.max) continue;
      const left = Math.max(area.left, x.getPixelForValue(s.from));
      const right = Math.min(area.right, x.getPixelForValue(s.to));
      if (right > left) ctx.fillRect(left, area.top, Math.max(1, right - left), area.bottom - area.top);
    }
    ctx.restore();
  },
};

/** Draws each visible dataset's min/max band (merged history buckets) under its line. */
export const bandPlugin: Plugin<'line', BandsOptions> = {
  id: 'bands',
  beforeDatasetsDraw(chart, _args, opts) {
    const bands = opts?.bands;
    const { x, y } = chart.scales ?? {};
    if (!bands?.length || !x || !y) return;
    const { ctx } = chart;
    ctx.save();
    const fillSegment = (band: BandPoint[], start: number, end: number) => {
      if (end - start < 1) return;
      ctx.beginPath();
      for (let j = start; j <= end; j += 1) {
        const px = x.getPixelForValue(band[j].x);
        const py = y.getPixelForValue(band[j].max);
        if (j === start) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      }
      for (let j = end; j >= start; j -= 1) ctx.lineTo(x.getPixelForValue(band[j].x), y.getPixelForValue(band[j].min));
      ctx.closePath();
      ctx.fill();
    };
    bands.forEach((band, i) => {
      const ds = chart.data.datasets[i];
      if (!band || band.length < 2 || !ds || ds.hidden) return;
      ctx.fillStyle = String(ds.backgroundColor ?? 'rgba(100, 116, 139, 0.15)');
      // One polygon per run of buckets without a hole, like the line.
      let start = 0;
      for (let j = 1; j <= band.length; j += 1) {
        if (j === band.length || band[j].x - band[j - 1].x > opts.maxGapMs) {
          fillSegment(band, start, j - 1);
          start = j;
        }
      }
    });
    ctx.restore();
  },
};

/** The shared crosshair (one vertical line at the same time on every chart) and the zoom selection. */
export const crosshairPlugin: Plugin<'line', CrosshairOptions> = {
  id: 'crosshair',
  afterDatasetsDraw(chart, _args, opts) {
    const x = chart.scales?.x;
    const area = chart.chartArea;
    if (!x || !area || !opts) return;
    const { ctx } = chart;
    ctx.save();
    if (opts.selection) {
      const left = Math.max(area.left, x.getPixelForValue(Math.min(opts.selection.from, opts.selection.to)));
      const right = Math.min(area.right, x.getPixelForValue(Math.max(opts.selection.from, opts.selection.to)));
      ctx.fillStyle = 'rgba(37, 99, 235, 0.15)';
      ctx.fillRect(left, area.top, Math.max(1, right - left), area.bottom - area.top);
    }
    if (opts.x !== null && opts.x >= x.min && opts.x <= x.max) {
      const px = Math.round(x.getPixelForValue(opts.x)) + 0.5;
      ctx.strokeStyle = opts.color;
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      ctx.moveTo(px, area.top);
      ctx.lineTo(px, area.bottom);
      ctx.stroke();
    }
    ctx.restore();
  },
};

export const ANNOTATION_COLORS: Readonly<Record<string, string>> = { critical: '#dc2626', warning: '#d97706', info: '#2563eb' };
/** Pointer distance (px) at which a marker counts as hovered. */
export const ANNOTATION_HIT_PX = 6;

/** Notification markers: a line across the plot and a flag on top, at the notification's time. */
export const annotationPlugin: Plugin<'line', AnnotationsOptions> = {
  id: 'annotations',
  afterDatasetsDraw(chart, _args, opts) {
    const x = chart.scales?.x;
    const area = chart.chartArea;
    if (!opts?.items?.length || !x || !area) return;
    const { ctx } = chart;
    ctx.save();
    for (const a of opts.items) {
      if (a.t < x.min || a.t > x.max) continue;
      const px = Math.round(x.getPixelForValue(a.t)) + 0.5;
      const color = ANNOTATION_COLORS[a.level] ?? ANNOTATION_COLORS.info;
      const hovered = opts.hovered === a.id;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = hovered ? 2 : 1;
      ctx.globalAlpha = hovered ? 1 : 0.7;
      ctx.beginPath();
      ctx.moveTo(px, area.top);
      ctx.lineTo(px, area.bottom);
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(px - 4, area.top);
      ctx.lineTo(px + 4, area.top);
      ctx.lineTo(px, area.top + 6);
      ctx.closePath();
      ctx.fill();
    }
    ctx.restore();
  },
};

/** The annotation nearest to pixel `px` within ANNOTATION_HIT_PX, if any. */
export function annotationAt(chart: Chart<'line'>, px: number): ChartAnnotation | null {
  const x = chart.scales?.x;
  const items = (chart.options.plugins?.annotations?.items ?? []) as ChartAnnotation[];
  if (!x) return null;
  let best: ChartAnnotation | null = null;
  let bestDist = ANNOTATION_HIT_PX;
  for (const a of items) {
    if (a.t < x.min || a.t > x.max) continue;
    const d = Math.abs(x.getPixelForValue(a.t) - px);
    if (d <= bestDist) {
      best = a;
      bestDist = d;
    }
  }
  return best;
}

Chart.register(LineController, LineElement, PointElement, LinearScale, Filler, Tooltip, Legend, Decimation, outagePlugin, bandPlugin, crosshairPlugin, annotationPlugin);

/** Byte and bit rates: round ticks in one unit per axis (see services/units.ts). */
const RATE_UNITS = new Set(['B/s', 'bit/s']);
/** Legend entries beyond this many are hidden (many-core hosts). */
export const MAX_LEGEND_ITEMS = 9;

export const PALETTE: Readonly<Record<'light' | 'dark', readonly string[]>> = {
  light: ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#ea580c'],
  dark: ['#60a5fa', '#f87171', '#34d399', '#fbbf24', '#a78bfa', '#f472b6', '#22d3ee', '#a3e635', '#fb923c'],
};

export const AXIS_COLORS = {
  light: { grid: 'rgba(15, 23, 42, 0.08)', ticks: '#475569', title: '#334155', crosshair: 'rgba(15, 23, 42, 0.55)' },
  dark: { grid: 'rgba(226, 232, 240, 0.10)', ticks: '#94a3b8', title: '#cbd5e1', crosshair: 'rgba(226, 232, 240, 0.6)' },
} as const;

export const OUTAGE_COLORS = { light: 'rgba(100, 116, 139, 0.18)', dark: 'rgba(148, 163, 184, 0.16)' } as const;

export { Chart };

function axisColors(theme: ThemeName) {
  return theme === 'dark' ? AXIS_COLORS.dark : AXIS_COLORS.light;
}
function outageColor(theme: ThemeName) {
  return theme === 'dark' ? OUTAGE_COLORS.dark : OUTAGE_COLORS.light;
}

export interface DatasetStyle {
  borderColor: string;
  backgroundColor: string;
  borderWidth: number;
  fill: false;
}

export function datasetStyle(index: number, theme: ThemeName, { secondary = false }: { secondary?: boolean } = {}): DatasetStyle {
  const colors = theme === 'dark' ? PALETTE.dark : PALETTE.light;
  const color = colors[index % colors.length];
  return {
    borderColor: secondary ? `${color}99` : color,
    backgroundColor: `${color}22`,
    borderWidth: secondary ? 1 : 2,
    fill: false,
  };
}

/** Chart.js afterBuildTicks hook: ticks at multiples of ticks.stepSize within the range. */
export function alignTimeTicks(scale: Scale): void {
  const step = (scale.options as unknown as { ticks: { stepSize?: number } }).ticks.stepSize;
  const { min, max } = scale;
  if (!step || !Number.isFinite(min) || !Number.isFinite(max) || (max - min) / step > 200) return;
  const ticks: Array<{ value: number }> = [];
  for (let v = Math.ceil(min / step) * step; v <= max; v += step) ticks.push({ value: v });
  scale.ticks = ticks;
}

export interface LineChartConfig {
  unit: string;
  yMax?: number;
  theme: ThemeName;
  windowMs: number;
}

/** Options for a streaming line chart with a linear ms x axis. */
export function lineChartOptions({ unit, yMax, theme, windowMs }: LineChartConfig): ChartOptions<'line'> {
  const axis = axisColors(theme);
  const longWindow = windowMs > 10 * 60 * SECOND_MS;
  const rate = RATE_UNITS.has(unit) ? rateAxis(unit) : null;
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    // Lines break at the null markers services/gaps.ts puts into holes.
    spanGaps: false,
    // Pointer events are handled by the chart component (shared crosshair,
    // drag-to-zoom), which sets the tooltip itself on every chart at once.
    events: [],
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    elements: {
      point: { radius: 0, hitRadius: 4, hoverRadius: 3 },
      line: { tension: 0, borderJoinStyle: 'round' },
    },
    scales: {
      x: {
        type: 'linear',
        bounds: 'data',
        grid: { color: axis.grid },
        border: { display: false },
        // Ticks on whole multiples of the step (10:05:00, 10:06:00…) rather
        // than counted from the window's left edge.
        afterBuildTicks: alignTimeTicks,
        ticks: {
          color: axis.ticks,
          maxRotation: 0,
          autoSkip: true,
          autoSkipPadding: 16,
          callback: (v: number | string) => formatClock(Number(v), !longWindow),
        },
      } as NonNullable<ChartOptions<'line'>['scales']>['x'],
      y: {
        type: 'linear',
        beginAtZero: true,
        min: 0,
        max: yMax,
        grace: yMax ? 0 : '5%',
        grid: { color: axis.grid },
        border: { display: false },
        title: { display: true, text: axisTitle(unit), color: axis.title, font: { size: 11 } },
        ...(rate ? rate.hooks : {}),
        ticks: {
          color: axis.ticks,
          maxTicksLimit: 6,
          precision: unit === 'count' ? 0 : undefined,
          callback: rate ? rate.callback : (v) => formatAxisTick(Number(v), unit),
        },
      },
    },
    plugins: {
      decimation: { enabled: true, algorithm: 'min-max' },
      outages: { spans: [], color: outageColor(theme) },
      bands: { bands: [], maxGapMs: Infinity },
      crosshair: { x: null, color: axis.crosshair, selection: null },
      annotations: { items: [], hovered: null },
      // The legend is HTML (ChartLegend.tsx): keyboard-usable, with stats.
      legend: {
        display: false,
        position: 'bottom',
        labels: {
          color: axis.ticks,
          boxWidth: 10,
          boxHeight: 10,
          padding: 8,
          font: { size: 11 },
          filter: (item) => (item.datasetIndex ?? 0) < MAX_LEGEND_ITEMS,
        },
      },
      tooltip: {
        animation: false,
        callbacks: {
          title: (items) => (items.length ? formatClock(items[0].parsed.x ?? 0) : ''),
          label: (item) => {
            const v = item.parsed.y ?? 0;
            return `${item.dataset.label}: ${RATE_UNITS.has(unit) ? formatRate(unit === 'bit/s' ? v / 8 : v, unit) : formatMetric(v, unit)}`;
          },
        },
      },
    },
  };
}

type RateScale = Scale & { $rate?: RateAxis };

/**
 * Scale hooks for a rate axis: the top is rounded up to the next round tick
 * and every tick is a multiple of one 1/2/2.5/5 step in one unit.
 */
export function rateAxis(unit: string) {
  return {
    hooks: {
      afterDataLimits: (scale: RateScale) => {
        const axis = rateTicks(scale.max, unit);
        scale.max = axis.ticks[axis.ticks.length - 1];
        scale.min = 0;
        scale.$rate = axis;
      },
      afterBuildTicks: (scale: RateScale) => {
        const axis = scale.$rate || rateTicks(scale.max, unit);
        scale.ticks = axis.ticks.map((value) => ({ value }));
        scale.min = 0;
        scale.max = axis.ticks[axis.ticks.length - 1];
      },
    },
    callback: function rateTick(this: RateScale, v: number | string) {
      return formatRateTick(Number(v), this.$rate || rateTicks(this.max, unit));
    },
  };
}

/** Re-colour an existing chart for a theme, in place. */
export function applyTheme(chart: Chart<'line'>, theme: ThemeName): void {
  const axis = axisColors(theme);
  const scales = chart.options.scales as Record<'x' | 'y', { grid: { color: string }; ticks: { color: string }; title?: { color: string } }>;
  scales.x.grid.color = axis.grid;
  scales.y.grid.color = axis.grid;
  scales.x.ticks.color = axis.ticks;
  scales.y.ticks.color = axis.ticks;
  if (scales.y.title) scales.y.title.color = axis.title;
  const plugins = chart.options.plugins;
  if (plugins?.legend?.labels) plugins.legend.labels.color = axis.ticks;
  if (plugins?.outages) plugins.outages.color = outageColor(theme);
  if (plugins?.crosshair) plugins.crosshair.color = axis.crosshair;
  chart.data.datasets.forEach((ds, i) => Object.assign(ds, datasetStyle(i, theme, { secondary: i > 0 && Boolean((ds as unknown as MetricDatasetExtras).secondary) })));
}
