// Where an alert's link lands: `/?from=<ms>&to=<ms>&host=<h>` opens the
// dashboard with this view on top, showing the host's CPU, memory and disk
// history (from /api/history) over the alert's time range.

import { useCallback, useMemo } from 'react';
import { sparkPath } from '../HostsOverview';
import type { HistoryData, Point } from '../../protocol/types';
import type { AlertRange } from '../../services/alertingApi';
import type { FetchLike } from '../../services/authService';
import { formatTime, useLoader } from './useLoader';


export const RANGE_METRICS = [
  { name: 'cpu_usage', label: 'CPU' },
  { name: 'memory_usage', label: 'Memory' },
  { name: 'disk_usage', label: 'Disk' },
];
const WIDTH = 600;
const HEIGHT = 80;

export async function fetchRange(
  getToken: () => string | null,
  { from, to, host }: AlertRange,
  fetchImpl: FetchLike = (input, init) => fetch(input, init),
): Promise<HistoryData> {
  const params = new URLSearchParams({
    metrics: RANGE_METRICS.map((m) => m.name).join(','),
    from: String(from / 1000),
    to: String(to / 1000),
    max_points: '300',
  });
  if (host) params.set('host', host);
  const res = await fetchImpl(`/api/history?${params}`, { headers: { Authorization: `Bearer ${getToken() || ''}` } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
  return body as HistoryData;
}

export interface AlertRangeViewProps {
  range: AlertRange;
  getToken: () => string | null;
  onClose: () => void;
  fetchImpl?: FetchLike;
}

export default function AlertRangeView({ range, getToken, onClose, fetchImpl }: AlertRangeViewProps) {
  const load = useCallback(() => fetchRange(getToken, range, fetchImpl), [getToken, range, fetchImpl]);
  const { data, error } = useLoader(load);
  const rows = useMemo(
    () =>
      RANGE_METRICS.map((m) => {
        const points: Point[] = (data?.series?.[m.name] || []).map((p) => ({ x: p.t, y: p.max ?? p.avg }));
        const peak = points.reduce((top, p) => Math.max(top, p.y), -Infinity);
        return { ...m, points, peak: points.length ? peak : null };
      }),
    [data],
  );
  return (
    <section className="panel alert-range" aria-label="Alert time range">
      <div className="panel-head">
        <h2>
          Alert time range: {formatTime(range.from)} – {formatTime(range.to)}
          {data?.host || range.host ? ` on ${data?.host || range.host}` : ''}
        </h2>
        <button type="button" className="btn btn-small" onClick={onClose}>Close</button>
      </div>
      {error ? <p className="result result-error" role="alert">{error}</p> : null}
      {rows.map((r) => (
        <div key={r.name} className="range-row">
          <span className="range-label">
            {r.label} peak {r.peak === null ? 'no data' : `${r.peak.toFixed(1)} %`}
          </span>
          <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} width="100%" height={HEIGHT} role="img" aria-label={`${r.label} over the range`}>
            <polyline fill="none" stroke="currentColor" strokeWidth="1.5" points={sparkPath(r.points, WIDTH, HEIGHT)} />
          </svg>
        </div>
      ))}
    </section>
  );
}
