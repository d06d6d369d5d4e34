// The delivery log: each notice's status, attempts and last error, and each
// attempt's outcome.

import { useCallback, useState } from 'react';
import { DELIVERY_STATUSES, type AlertingApi } from '../../services/alertingApi';
import { formatTime, useLoader } from './useLoader';

export default function DeliveryLog({ api }: { api: AlertingApi }) {
  const [status, setStatus] = useState('');
  const load = useCallback(() => api.deliveries(50, status), [api, status]);
  const { data, error, reload, loading } = useLoader(load);
  const items = data?.deliveries || [];
  const counts = data?.counts || {};
  return (
    <div className="admin-card alerting-deliveries">
      <h3>Delivery log</h3>
      <div className="toolbar">
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">all</option>
            {DELIVERY_STATUSES.map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="button" className="btn btn-small" onClick={reload} disabled={loading}>Refresh</button>
        <span className="counts">
          {DELIVERY_STATUSES.map((s) => `${s}: ${counts[s] || 0}`).join(' · ')}
        </span>
      </div>
      {error ? <p className="result result-error" role="alert">{error}</p> : null}
      {items.length ? (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Created</th>
                <th scope="col">Channel</th>
                <th scope="col">Alerts</th>
                <th scope="col">Status</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.id}>
                  <td>{formatTime(d.created_at_ms)}</td>
                  <td>{d.channel}</td>
                  <td>{d.alerts} {d.title_status}{d.kind === 'repeat' ? ' (repeat)' : ''}</td>
                  <td><span className={`delivery delivery-${d.status}`}>{d.status}</span></td>
                  <td>
                    <details>
                      <summary>{d.attempts}</summary>
                      <ol className="attempts">
                        {d.log.map((a) => (
                          <li key={`${a.ts_ms}-${a.node}-${a.detail}`} className={a.ok ? 'ok' : 'failed'}>
                            {formatTime(a.ts_ms)} {a.node}: {a.detail} ({a.duration_ms} ms)
                          </li>
                        ))}
                      </ol>
                    </details>
                  </td>
                  <td>{d.last_error || ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="empty">{loading ? 'Loading…' : 'No deliveries.'}</p>
      )}
    </div>
  );
}
