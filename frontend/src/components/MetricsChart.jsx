// A live line chart for a group of metrics.
//
// The Chart.js instance lives in a ref: created once on mount, destroyed on
// unmount, and redrawn in place with chart.update('none') whenever the series
// store flushes (at most once per animation frame). React renders this
// component only when its props change (window, pause, theme, metric list),
// never per message. Datasets keep their identity; only their `data` array
// reference is (re)assigned, which also works with the decimation plugin.

import { memo, useId, useLayoutEffect, useRef } from 'react';
import { Chart, applyTheme, datasetStyle, lineChartOptions } from './chartSetup.js';
import { SECOND_MS, MINUTE_MS, formatClock } from '../services/dashboardService.js';

const X_STEP_MS = [
  [MINUTE_MS, 10 * SECOND_MS],
  [5 * MINUTE_MS, MINUTE_MS],
  [15 * MINUTE_MS, 3 * MINUTE_MS],
  [Infinity, 10 * MINUTE_MS],
];

function xStepFor(windowMs) {
  return X_STEP_MS.find(([w]) => windowMs <= w)[1];
}

/** Past its due time, a throttled redraw waits this long for the next flush. */
const TRAILING_GRACE_MS = 1000;

/** Charts redraw in different frames when throttled (a stable phase per id). */
function phaseOf(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return (h % 97) / 97;
}

function MetricsChart({ id, title, unit, yMax, metrics, labels, store, windowMs, paused, theme, registry }) {
  const canvasRef = useRef(null);
  const chartRef = useRef(null);
  const headingId = useId();
  // Everything the draw callback reads, so the store subscription is made once.
  const live = useRef({ metrics, windowMs, paused, pausedAt: null, dirty: false, lastDrawAt: -Infinity, trailing: null });

  const draw = (force = false) => {
    const chart = chartRef.current;
    const s = live.current;
    if (!chart) return;
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
    clearTimeout(s.trailing);
    s.trailing = null;
    s.lastDrawAt = force ? now - phaseOf(id) * pixelMs : now;
    s.dirty = false;
    const newest = store.newestTime();
    // An empty store (just cleared) still redraws, so no stale lines remain.
    const xMax = s.pausedAt ?? (Number.isFinite(newest) ? newest : Date.now());
    const x = chart.options.scales.x;
    x.min = xMax - s.windowMs;
    x.max = xMax;
    chart.data.datasets.forEach((ds) => {
      ds.data = store.get(ds.metric);
    });
    chart.update('none');
  };

  // Create once. A layout effect declared first, so the chart exists before
  // the effects below configure it (layout effects run in order, before paint).
  useLayoutEffect(() => {
    const chart = new Chart(canvasRef.current, {
      type: 'line',
      data: { datasets: [] },
      options: lineChartOptions({ unit, yMax, theme, windowMs }),
    });
    chartRef.current = chart;
    registry?.set(id, chart);
    const unsubscribe = store.subscribe(() => draw());
    const onVisible = () => {
      if (!document.hidden && live.current.dirty) draw();
    };
    document.addEventListener('visibilitychange', onVisible);
    return () => {
      unsubscribe();
      clearTimeout(live.current.trailing);
      live.current.trailing = null;
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
    const byMetric = new Map(chart.data.datasets.map((ds) => [ds.metric, ds]));
    chart.data.datasets = metrics.map((name, i) => {
      const existing = byMetric.get(name);
      if (existing) return existing;
      const secondary = i > 0 && metrics.length > 3;
      return { metric: name, label: labels?.[name] || name, data: store.get(name), secondary, ...datasetStyle(i, theme, { secondary }) };
    });
    live.current.metrics = metrics;
    draw(true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [metricsKey]);

  useLayoutEffect(() => {
    const chart = chartRef.current;
    const s = live.current;
    s.windowMs = windowMs;
    if (paused && !s.paused) s.pausedAt = store.newestTime();
    if (!paused) s.pausedAt = null;
    s.paused = paused;
    if (!chart) return;
    const long = windowMs > 10 * MINUTE_MS;
    chart.options.scales.x.ticks.stepSize = xStepFor(windowMs);
    chart.options.scales.x.ticks.callback = (v) => formatClock(v, !long);
    // Redraw even while paused so a window change shows at once.
    draw(true);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [windowMs, paused]);

  useLayoutEffect(() => {
    const chart = chartRef.current;
    if (!chart) return;
    applyTheme(chart, theme);
    chart.update('none');
  }, [theme]);

  const windowLabel = windowMs >= 60 * MINUTE_MS ? `${windowMs / (60 * MINUTE_MS)} h` : `${windowMs / MINUTE_MS} min`;
  return (
    <figure className="chart-card" data-testid={`chart-${id}`} aria-labelledby={headingId}>
      <figcaption className="chart-head">
        <h3 id={headingId}>{title}</h3>
        <span className="chart-window">last {windowLabel}{paused ? ' · paused' : ''}</span>
      </figcaption>
      <div className="chart-body">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={`${title} chart over the last ${windowLabel}: ${metrics.map((m) => labels?.[m] || m).join(', ')}`}
        />
      </div>
    </figure>
  );
}

export default memo(MetricsChart);
