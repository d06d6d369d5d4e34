// Live notifications: level colours, unread count, acknowledge (operators and
// admins). State is a bounded list kept by notificationsReducer.

import { useId } from 'react';
import { formatAgo, formatClock } from '../services/dashboardService.js';

export const MAX_NOTIFICATIONS = 200;

function normalize(n, extra) {
  return {
    id: String(n.id),
    level: ['info', 'warning', 'critical'].includes(n.level) ? n.level : 'info',
    title: n.title || '(no title)',
    message: n.message || '',
    timestamp: n.timestamp ? Date.parse(n.timestamp) : Date.now(),
    source: n.source || '',
    state: n.state || null,
    silenced: n.silenced === true, // a silence covers this alert: shown, not delivered (docs/alerting.md)
    acknowledgedBy: n.acknowledged_by || null,
    acknowledgedAt: n.acknowledged_at ? Date.parse(n.acknowledged_at) : null,
    ...extra,
  };
}

/**
 * Actions: {type:'add', items, read} (live or loaded notifications; newest
 * first in the list), {type:'ack', id, by, at}, {type:'read', id?}.
 */
export function notificationsReducer(state, action) {
  switch (action.type) {
    case 'add': {
      const byId = new Map(state.map((n) => [n.id, n]));
      for (const raw of action.items) {
        const n = normalize(raw, { read: Boolean(action.read) });
        const prev = byId.get(n.id);
        // A re-delivered notification keeps what we knew (read state, ack).
        byId.set(n.id, prev ? { ...n, read: prev.read || n.read, acknowledgedBy: n.acknowledgedBy || prev.acknowledgedBy, acknowledgedAt: n.acknowledgedAt || prev.acknowledgedAt } : n);
      }
      return [...byId.values()].sort((a, b) => b.timestamp - a.timestamp).slice(0, MAX_NOTIFICATIONS);
    }
    case 'ack': {
      let changed = false;
      const next = state.map((n) => {
        if (n.id !== String(action.id)) return n;
        changed = true;
        return { ...n, acknowledgedBy: action.by || n.acknowledgedBy, acknowledgedAt: action.at ? Date.parse(action.at) : Date.now(), read: true };
      });
      return changed ? next : state;
    }
    case 'read':
      return state.map((n) => (action.id === undefined || n.id === action.id ? (n.read ? n : { ...n, read: true }) : n));
    default:
      return state;
  }
}

export function unreadCount(list) {
  return list.reduce((k, n) => k + (n.read ? 0 : 1), 0);
}

export default function NotificationsPanel({ items, canAck, onAck, onRead, pendingAcks, now }) {
  const headingId = useId();
  const unread = unreadCount(items);
  return (
    <section className="panel notifications" aria-labelledby={headingId} id="notifications">
      <header className="panel-head">
        <h2 id={headingId}>
          Notifications{' '}
          <span className={`badge${unread ? ' badge-hot' : ''}`} data-testid="notifications-unread" aria-label={`${unread} unread`}>
            {unread}
          </span>
        </h2>
        <button type="button" className="btn btn-small" onClick={() => onRead()} disabled={!unread}>
          Mark all read
        </button>
      </header>
      {items.length === 0 ? (
        <p className="empty">No notifications yet.</p>
      ) : (
        <ul className="notif-list">
          {items.map((n) => (
            <li
              key={n.id}
              className={`notif notif-${n.level}${n.read ? '' : ' is-unread'}${n.acknowledgedBy ? ' is-acked' : ''}`}
              data-testid="notification-item"
              data-id={n.id}
              data-level={n.level}
              data-acknowledged={n.acknowledgedBy ? 'true' : 'false'}
              onClick={() => !n.read && onRead(n.id)}
            >
              <div className="notif-top">
                <span className={`level level-${n.level}`}>{n.level}</span>
                <strong className="notif-title">{n.title}</strong>
                <time dateTime={new Date(n.timestamp).toISOString()} title={new Date(n.timestamp).toLocaleString()}>
                  {formatAgo(n.timestamp, now)}
                </time>
              </div>
              {n.message ? <p className="notif-msg">{n.message}</p> : null}
              <div className="notif-foot">
                <span className="notif-source">
                  {n.source}
                  {n.state ? ` · ${n.state}` : ''}
                  {n.silenced ? <span className="silenced-mark"> · silenced</span> : null}
                </span>
                {n.acknowledgedBy ? (
                  <span className="notif-acked">
                    ✓ acknowledged by {n.acknowledgedBy}
                    {n.acknowledgedAt ? ` at ${formatClock(n.acknowledgedAt)}` : ''}
                  </span>
                ) : canAck ? (
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={(e) => {
                      e.stopPropagation();
                      onAck(n.id);
                    }}
                    disabled={pendingAcks.has(n.id)}
                    aria-label={`Acknowledge ${n.title}`}
                  >
                    {pendingAcks.has(n.id) ? 'Acknowledging…' : 'Acknowledge'}
                  </button>
                ) : null}
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
