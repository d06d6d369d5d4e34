// What is firing now (issue 16 item 4): one item per rule and host, from the
// daemon's rule engine (`alerts`), keyed so an item updates in place when it
// is acknowledged and disappears when its rule resolves. Beside it the
// notification feed keeps the history of events.

import { useId } from 'react';
import { toEpochMs } from '../protocol/parse';
import type { ActiveAlert } from '../protocol/types';
import { formatAgo, formatClock } from '../services/format';

export interface ActiveAlertsProps {
  /** Null until the first `alerts` reply. */
  alerts: ActiveAlert[] | null;
  canAck: boolean;
  onAck(notificationId: string): void;
  pendingAcks: ReadonlySet<string>;
  now: number;
}

export default function ActiveAlerts({ alerts, canAck, onAck, pendingAcks, now }: ActiveAlertsProps) {
  const headingId = useId();
  const list = alerts || [];
  return (
    <section className="panel active-alerts" aria-labelledby={headingId} id="active-alerts" data-testid="active-alerts">
      <header className="panel-head">
        <h2 id={headingId}>
          Active alerts{' '}
          <span className={`badge${list.length ? ' badge-hot' : ''}`} data-testid="active-alerts-count">
            {list.length}
          </span>
        </h2>
      </header>
      {alerts === null ? (
        <p className="empty">Loading…</p>
      ) : list.length === 0 ? (
        <p className="empty">Nothing is firing.</p>
      ) : (
        <ul className="alert-list">
          {list.map((a) => {
            const since = toEpochMs(a.since);
            const notificationId = a.notification_id ?? null;
            return (
              <li
                key={`${a.rule}@${a.host}`}
                className={`alert-item alert-${a.level}`}
                data-testid="active-alert"
                data-rule={a.rule}
                data-acknowledged={a.acknowledged_by ? 'true' : 'false'}
              >
                <div className="notif-top">
                  <span className={`level level-${a.level}`}>{a.level}</span>
                  <strong className="notif-title">{a.title || a.rule}</strong>
                </div>
                <p className="notif-msg">
                  {a.rule} on {a.host} · firing since{' '}
                  <time dateTime={a.since}>{formatClock(since)}</time> ({formatAgo(since, now)})
                </p>
                <div className="notif-foot">
                  {a.acknowledged_by ? (
                    <span className="notif-acked">
                      ✓ acknowledged by {a.acknowledged_by}
                      {a.acknowledged_at ? ` at ${formatClock(toEpochMs(a.acknowledged_at))}` : ''}
                    </span>
                  ) : canAck && notificationId ? (
                    <button
                      type="button"
                      className="btn btn-small"
                      onClick={() => onAck(notificationId)}
                      disabled={pendingAcks.has(notificationId)}
                      aria-label={`Acknowledge ${a.rule} on ${a.host}`}
                    >
                      {pendingAcks.has(notificationId) ? 'Acknowledging…' : 'Acknowledge'}
                    </button>
                  ) : (
                    <span className="notif-source">not acknowledged</span>
                  )}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
