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
import { SECOND_MS, axisTitle, formatAxisTick, formatClock, formatMetric } from '../services/dashboardService.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, Filler, Tooltip, Legend, Decimation);

/** Lines further apart than this are drawn broken (a gap in the data). */
export const SPAN_GAPS_MS = 30 * SECOND_MS;
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
    spanGaps: SPAN_GAPS_MS,
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
        ticks: { color: axis.ticks, maxTicksLimit: 6, precision: unit === 'count' ? 0 : undefined, callback: (v) => formatAxisTick(v, unit) },
      },
    },
    plugins: {
      decimation: { enabled: true, algorithm: 'min-max' },
      legend: {
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
          label: (item) => `${item.dataset.label}: ${formatMetric(item.parsed.y, unit)}`,
        },
      },
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
  chart.data.datasets.forEach((ds, i) => Object.assign(ds, datasetStyle(i, theme, { secondary: i > 0 && ds.secondary })));
}
