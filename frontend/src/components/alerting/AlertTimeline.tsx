// The alert timeline: every firing and resolve, newest first; silenced ones
// are marked (shown, not delivered).

import { useCallback, useState } from 'react';
import type { AlertingApi } from '../../services/alertingApi';
import { formatTime, useLoader } from './useLoader';

const RANGES: ReadonlyArray<{ id: string; ms: number }> = [
  { id: '1h', ms: 3_600_000 },
  { id: '24h', ms: 86_400_000 },
  { id: '7d', ms: 7 * 86_400_000 },
];

const wallNow = () => Date.now(); // stable: a new default each render would reload forever

export default function AlertTimeline({ api, now = wallNow }: { api: AlertingApi; now?: () => number }) {
  const [range, setRange] = useState('24h');
  const load = useCallback(() => {
    const to = now();
    const span = RANGES.find((r) => r.id === range)?.ms ?? RANGES[1].ms;
    return api.timeline(to - span, to);
  }, [api, range, now]);
  const { data, error, reload } = useLoader(load);
  const events = data?.events || [];
  return (
    <div className="admin-card alerting-timeline">
      <h3>Alert timeline</h3>
      <div className="toolbar">
        {RANGES.map((r) => (
          <button key={r.id} type="button" className="btn btn-small" aria-pressed={range === r.id} onClick={() => setRange(r.id)}>
            {r.id}
          </button>
        ))}
        <button type="button" className="btn btn-small" onClick={reload}>Refresh</button>
      </div>
      {error ? <p className="result result-error" role="alert">{error}</p> : null}
      {events.length ? (
        <ol className="timeline">
          {events.map((e) => (
            <li key={e.event_key} className={`timeline-event state-${e.state}`}>
              <time dateTime={new Date(e.ts_ms).toISOString()}>{formatTime(e.ts_ms)}</time>{' '}
              <span className={`level level-${e.level}`}>{e.state}</span>{' '}
              <strong>{e.labels.alertname}</strong> on {e.labels.host}: {e.summary}
              {e.silenced_by ? <span className="silenced-mark" title={`silence ${e.silenced_by}`}> silenced</span> : null}
            </li>
          ))}
        </ol>
      ) : (
        <p className="empty">No alerts in this range.</p>
      )}
    </div>
  );
}
