// Chart.js registration (only what the line charts use, so the bundle stays
// small) and the chart options shared by every live chart.

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
} from 'chart.js';
import { SECOND_MS } from '../services/constants';
import { axisTitle, formatAxisTick, formatClock, formatMetric } from '../services/format';
import { formatRate, formatRateTick, rateTicks } from '../services/units';

/**
 * Shades known outages (options.plugins.outages.spans, [{from, to}] in ms)
 * behind the lines, so "the daemon was down here" is visible, not only a break.
 */
export const outagePlugin = {
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

Chart.register(LineController, LineElement, PointElement, LinearScale, Filler, Tooltip, Legend, Decimation, outagePlugin);

/** Byte and bit rates: round ticks in one unit per axis (see services/units.js). */
const RATE_UNITS = new Set(['B/s', 'bit/s']);
/** Legend entries beyond this many are hidden (many-core hosts). */
export const MAX_LEGEND_ITEMS = 9;

export const PALETTE = {
  light: ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#ea580c'],
  dark: ['#60a5fa', '#f87171', '#34d399', '#fbbf24', '#a78bfa', '#f472b6', '#22d3ee', '#a3e635', '#fb923c'],
};

export const AXIS_COLORS = {
  light: { grid: 'rgba(15, 23, 42, 0.08)', ticks: '#475569', title: '#334155' },
  dark: { grid: 'rgba(226, 232, 240, 0.10)', ticks: '#94a3b8', title: '#cbd5e1' },
};

export const OUTAGE_COLORS = { light: 'rgba(100, 116, 139, 0.18)', dark: 'rgba(148, 163, 184, 0.16)' };

export { Chart };

export function datasetStyle(index, theme, { secondary = false } = {}) {
  const colors = PALETTE[theme] || PALETTE.light;
  const color = colors[index % colors.length];
  return {
    borderColor: secondary ? `${color}99` : color,
    backgroundColor: `${color}22`,
    borderWidth: secondary ? 1 : 2,
    fill: false,
  };
}

/** Chart.js afterBuildTicks hook: ticks at multiples of ticks.stepSize within the range. */
export function alignTimeTicks(scale) {
  const step = scale.options.ticks.stepSize;
  const { min, max } = scale;
  if (!step || !Number.isFinite(min) || !Number.isFinite(max) || (max - min) / step > 200) return;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max; v += step) ticks.push({ value: v });
  scale.ticks = ticks;
}

/** Options for a streaming line chart with a linear ms x axis. */
export function lineChartOptions({ unit, yMax, theme, windowMs }) {
  const axis = AXIS_COLORS[theme] || AXIS_COLORS.light;
  const longWindow = windowMs > 10 * 60 * SECOND_MS;
  return {
    animation: false,
    responsive: true,
    maintainAspectRatio: false,
    parsing: false,
    normalized: true,
    // Lines break at the null markers services/gaps.js puts into holes.
    spanGaps: false,
    events: ['mousemove', 'mouseout', 'touchstart', 'touchmove'],
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
          callback: (v) => formatClock(v, !longWindow),
        },
      },
      y: {
        type: 'linear',
        beginAtZero: true,
        min: 0,
        max: yMax,
        grace: yMax ? 0 : '5%',
        grid: { color: axis.grid },
        border: { display: false },
        title: { display: true, text: axisTitle(unit), color: axis.title, font: { size: 11 } },
        ...(RATE_UNITS.has(unit) ? rateAxis(unit).hooks : {}),
        ticks: {
          color: axis.ticks,
          maxTicksLimit: 6,
          precision: unit === 'count' ? 0 : undefined,
          callback: RATE_UNITS.has(unit) ? rateAxis(unit).callback : (v) => formatAxisTick(v, unit),
        },
      },
    },
    plugins: {
      decimation: { enabled: true, algorithm: 'min-max' },
      outages: { spans: [], color: OUTAGE_COLORS[theme] || OUTAGE_COLORS.light },
      // The legend is HTML (ChartLegend.jsx): keyboard-usable, with stats.
      legend: {
        display: false,
        position: 'bottom',
        labels: {
          color: axis.ticks,
          boxWidth: 10,
          boxHeight: 10,
          padding: 8,
          font: { size: 11 },
          filter: (item) => item.datasetIndex < MAX_LEGEND_ITEMS,
        },
      },
      tooltip: {
        callbacks: {
          title: (items) => (items.length ? formatClock(items[0].parsed.x) : ''),
          label: (item) => `${item.dataset.label}: ${RATE_UNITS.has(unit) ? formatRate(unit === 'bit/s' ? item.parsed.y / 8 : item.parsed.y, unit) : formatMetric(item.parsed.y, unit)}`,
        },
      },
    },
  };
}

/**
 * Scale hooks for a rate axis: the top is rounded up to the next round tick
 * and every tick is a multiple of one 1/2/2.5/5 step in one unit.
 */
export function rateAxis(unit) {
  return {
    hooks: {
      afterDataLimits: (scale) => {
        const axis = rateTicks(scale.max, unit);
        scale.max = axis.ticks[axis.ticks.length - 1];
        scale.min = 0;
        scale.$rate = axis;
      },
      afterBuildTicks: (scale) => {
        const axis = scale.$rate || rateTicks(scale.max, unit);
        scale.ticks = axis.ticks.map((value) => ({ value }));
        scale.min = 0;
        scale.max = axis.ticks[axis.ticks.length - 1];
      },
    },
    callback: function rateTick(v) {
      return formatRateTick(v, this.$rate || rateTicks(this.max, unit));
    },
  };
}

/** Re-colour an existing chart for a theme, in place. */
export function applyTheme(chart, theme) {
  const axis = AXIS_COLORS[theme] || AXIS_COLORS.light;
  const { x, y } = chart.options.scales;
  x.grid.color = axis.grid;
  y.grid.color = axis.grid;
  x.ticks.color = axis.ticks;
  y.ticks.color = axis.ticks;
  y.title.color = axis.title;
  chart.options.plugins.legend.labels.color = axis.ticks;
  chart.options.plugins.outages.color = OUTAGE_COLORS[theme] || OUTAGE_COLORS.light;
  chart.data.datasets.forEach((ds, i) => Object.assign(ds, datasetStyle(i, theme, { secondary: i > 0 && ds.secondary })));
}
