// A live line chart for a group of metrics.
//
// The Chart.js instance lives in a ref: created once on mount, destroyed on
// unmount, and redrawn in place with chart.update('none') whenever the series
// store flushes (at most once per animation frame). React renders this
// component only when its props change (window, pause, theme, metric list)
// and, at most once per STATS_EVERY_MS, for the legend's min/avg/max and the
// accessible summary. Datasets keep their identity; each draw hands them a
// fresh copy of the data with a break marker in every gap (services/gaps.js),
// so a paused chart keeps its own frozen arrays and stays inspectable while
// the store keeps growing underneath.

import { memo, useId, useLayoutEffect, useRef, useState } from 'react';
import { Chart, applyTheme, datasetStyle, lineChartOptions } from './chartSetup.js';
import ChartLegend from './ChartLegend.jsx';
import { SECOND_MS, MINUTE_MS } from '../services/constants';
import { formatClock, formatMetric } from '../services/format';
import { GAP_INTERVALS, extendBreaks, observedStepMs, rangeStats } from '../services/gaps';
import { formatRate } from '../services/units';
import { pointClickHandler } from './host/chartClick';

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
/** Legend statistics and the accessible summary refresh at most this often. */
const STATS_EVERY_MS = 1000;
/** Data that starts this far (share of the window) right of the left edge gets "data since". */
const DATA_SINCE_SHARE = 0.05;
/** Rows in the data-table alternative (newest samples). */
const TABLE_ROWS = 12;

/** Charts redraw in different frames when throttled (a stable phase per id). */
function phaseOf(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return (h % 97) / 97;
}

/** Values in the chart's unit: bits/s are bytes/s × 8. */
function factorOf(unit) {
  return unit === 'bit/s' ? 8 : 1;
}

export function valueFormatter(unit) {
  if (unit === 'bit/s') return (v) => formatRate(v / 8, 'bit/s');
  if (unit === 'B/s') return (v) => formatRate(v, 'B/s');
  return (v) => formatMetric(v, unit);
}

function MetricsChart({ id, title, unit, yMax, metrics, labels, store, windowMs, paused, theme, registry, gapMs = 2500, outages, onPointClick = null }) {
  const canvasRef = useRef(null);
  const chartRef = useRef(null);
  const headingId = useId();
  const summaryId = useId();
  const [hidden, setHidden] = useState(() => new Set());
  const [view, setView] = useState({ stats: {}, oldest: null, xMin: null, xMax: null, table: [] });
  const [tableOpen, setTableOpen] = useState(false);
  // Everything the draw callback reads, so the store subscription is made once.
  const live = useRef({ metrics, windowMs, paused, pausedAt: null, dirty: false, lastDrawAt: -Infinity, trailing: null, gapMs, lastStatsAt: -Infinity, statsTimer: null });
  live.current.gapMs = gapMs;

  const publishView = (chart, xMin, xMax) => {
    const stats = {};
    let oldest = Infinity;
    for (const ds of chart.data.datasets) {
      const st = rangeStats(ds.data, xMin, xMax);
      if (st) stats[ds.metric] = st;
      const first = ds.data.find((p) => p.y !== null && p.x >= xMin);
      if (first && first.x < oldest) oldest = first.x;
    }
    const rows = new Map();
    for (const ds of chart.data.datasets) {
      // The newest TABLE_ROWS real points, walking back (no copy of the series).
      const pts = [];
      for (let i = ds.data.length - 1; i >= 0 && pts.length < TABLE_ROWS; i -= 1) if (ds.data[i].y !== null) pts.push(ds.data[i]);
      for (const p of pts) {
        if (!rows.has(p.x)) rows.set(p.x, {});
        rows.get(p.x)[ds.metric] = p.y;
      }
    }
    const table = [...rows.entries()].sort((a, b) => b[0] - a[0]).slice(0, TABLE_ROWS);
    setView({ stats, oldest: Number.isFinite(oldest) ? oldest : null, xMin, xMax, table });
  };

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
    const factor = factorOf(chart.$unit);
    // A paused chart keeps the array it has: only a forced draw (window change) replaces it.
    const fresh = s.paused;
    // The expected step, widened by history buckets and by the spacing the
    // data really has (an admin elsewhere may have slowed the collection).
    const first = chart.data.datasets[0] ? store.get(chart.data.datasets[0].metric) : [];
    const maxGap = Math.max(s.gapMs, GAP_INTERVALS * (store.bucketMs?.() || 0), GAP_INTERVALS * observedStepMs(first));
    chart.data.datasets.forEach((ds) => {
      if (fresh || !ds.$breaks) ds.$breaks = {};
      ds.data = extendBreaks(ds.$breaks, store.get(ds.metric), maxGap, factor);
    });
    if (outages) chart.options.plugins.outages.spans = outages.spans();
    chart.update('none');
    if (force || now - s.lastStatsAt >= STATS_EVERY_MS) {
      clearTimeout(s.statsTimer);
      s.statsTimer = null;
      s.lastStatsAt = now;
      publishView(chart, x.min, x.max);
    } else if (!s.statsTimer) {
      // The last draw of a burst still reaches the legend, a little later.
      s.statsTimer = setTimeout(() => {
        s.statsTimer = null;
        const c = chartRef.current;
        if (!c) return;
        s.lastStatsAt = performance.now();
        publishView(c, c.options.scales.x.min, c.options.scales.x.max);
      }, STATS_EVERY_MS - (now - s.lastStatsAt));
    }
  };

  // Create once. A layout effect declared first, so the chart exists before
  // the effects below configure it (layout effects run in order, before paint).
  useLayoutEffect(() => {
    const chart = new Chart(canvasRef.current, {
      type: 'line',
      data: { datasets: [] },
      options: lineChartOptions({ unit, yMax, theme, windowMs }),
    });
    chart.$unit = unit;
    chartRef.current = chart;
    registry?.set(id, chart);
    const unsubscribe = store.subscribe(() => draw());
    const onVisible = () => {
      if (!document.hidden && live.current.dirty) draw();
    };
    document.addEventListener('visibilitychange', onVisible);
    // The ref holds one mutable object for the chart's life; the cleanup
    // clears the timers of that same object.
    const state = live.current;
    return () => {
      unsubscribe();
      clearTimeout(state.trailing);
      clearTimeout(state.statsTimer);
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
    const byMetric = new Map(chart.data.datasets.map((ds) => [ds.metric, ds]));
    chart.data.datasets = metrics.map((name, i) => {
      const existing = byMetric.get(name);
      if (existing) return existing;
      const secondary = i > 0 && metrics.length > 3;
      return { metric: name, label: labels?.[name] || name, data: [], secondary, hidden: hidden.has(name), ...datasetStyle(i, theme, { secondary }) };
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
  }, [windowMs, paused, gapMs]);

  useLayoutEffect(() => {
    const chart = chartRef.current;
    if (!chart) return;
    applyTheme(chart, theme);
    chart.update('none');
  }, [theme]);

  // Hidden series: Chart.js skips a dataset with `hidden`; redraw in place.
  const hiddenKey = [...hidden].join(',');
  useLayoutEffect(() => {
    const chart = chartRef.current;
    if (!chart) return;
    chart.data.datasets.forEach((ds) => {
      ds.hidden = hidden.has(ds.metric);
    });
    chart.update('none');
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [hiddenKey]);

  const toggle = (metric) =>
    setHidden((h) => {
      const next = new Set(h);
      if (next.has(metric)) next.delete(metric);
      else next.add(metric);
      return next;
    });
  const isolate = (metric) =>
    setHidden((h) => {
      const onlyThis = metrics.every((m) => m === metric || h.has(m)) && !h.has(metric);
      return onlyThis ? new Set() : new Set(metrics.filter((m) => m !== metric));
    });

  const format = valueFormatter(unit);
  const windowLabel = windowMs >= 60 * MINUTE_MS ? `${windowMs / (60 * MINUTE_MS)} h` : `${windowMs / MINUTE_MS} min`;
  const colors = chartRef.current ? Object.fromEntries(chartRef.current.data.datasets.map((ds) => [ds.metric, ds.borderColor])) : {};
  const series = metrics.map((m) => ({ metric: m, label: labels?.[m] || m, color: colors[m] }));
  const hasData = view.oldest !== null;
  const partial = hasData && view.xMin !== null && view.oldest - view.xMin > windowMs * DATA_SINCE_SHARE;
  const coverage = !hasData ? 'no data in this window yet' : partial ? `data since ${formatClock(view.oldest)}` : null;
  const summary = series
    .filter((s) => !hidden.has(s.metric) && view.stats[s.metric])
    .map((s) => {
      const st = view.stats[s.metric];
      return `${s.label}: min ${format(st.min)}, average ${format(st.avg)}, max ${format(st.max)}`;
    })
    .join('; ');
  return (
    <figure className="chart-card" data-testid={`chart-${id}`} aria-labelledby={headingId}>
      <figcaption className="chart-head">
        <h3 id={headingId}>{title}</h3>
        <span className="chart-window">
          last {windowLabel}
          {paused ? ' · paused' : ''}
          {coverage ? <span className="chart-coverage" data-testid={`coverage-${id}`}> · {coverage}</span> : null}
        </span>
      </figcaption>
      <div className="chart-body">
        <canvas
          ref={canvasRef}
          role="img"
          aria-label={`${title} chart over the last ${windowLabel}`}
          aria-describedby={summaryId}
          className={onPointClick ? 'is-clickable' : undefined}
          onClick={pointClickHandler(() => chartRef.current, onPointClick)}
        />
      </div>
      <p id={summaryId} className="sr-only" data-testid={`summary-${id}`}>
        {summary ? `${summary} over the visible range.` : coverage || ''}
        {coverage && summary ? ` ${coverage}.` : ''}
      </p>
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
                    {series.map((s) => (
                      <td key={s.metric}>{Number.isFinite(values[s.metric]) ? format(values[s.metric]) : '—'}</td>
                    ))}
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

export default memo(MetricsChart);
