// Synthetic metric data for the frame-budget measurement of full 1 h windows
// (a brand-new daemon has only minutes of data). Test-only: it runs in the
// page through page.evaluate and is never part of the shipped bundle.

/**
 * Fill every series that has data to `spanMs` at the collection interval
 * with a random walk in the metric's natural range, through
 * window.__dashd.mergeSeries. Runs inside the page (serialised by Playwright).
 */
export function fillSynthetic({ spanMs }) {
  const d = window.__dashd;
  const { names, units, intervalMs, newest } = d.dataShape();
  const fromMs = newest - spanMs;
  const series = {};
  for (const name of names) {
    const unit = units[name];
    const max = unit === '%' ? 100 : unit === 'B/s' ? 50 * 1024 * 1024 : 1000;
    const pts = [];
    let v = max / 2;
    for (let t = fromMs; t < newest; t += intervalMs) {
      v = Math.min(max, Math.max(0, v + (Math.random() - 0.5) * (max / 50)));
      pts.push({ x: t, y: v });
    }
    series[name] = pts;
  }
  return d.mergeSeries(series, intervalMs);
}
