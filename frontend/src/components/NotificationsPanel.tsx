// Live notifications: level colours, unread count, acknowledge (operators and
// admins). State is a bounded list kept by notificationsReducer; the read
// flags come from the server (per user, see hooks/useNotificationState.js).
// A rule's "firing" item that is no longer among the active alerts reads
// "resolved"; only warnings and criticals that still need it offer
// Acknowledge, and a skip link lets keyboard users jump past the list.

import { useId } from 'react';
import type { NotificationData, NotificationLevel } from '../protocol/types';
import { formatAgo, formatClock } from '../services/format';

export const MAX_NOTIFICATIONS = 200;

const LEVELS: readonly NotificationLevel[] = ['info', 'warning', 'critical'];

/** A notification as the feed keeps it: times in epoch ms, camelCase acknowledgement. */
export interface FeedItem {
  id: string;
  level: NotificationLevel;
  title: string;
  message: string;
  timestamp: number;
  source: string;
  state: 'firing' | 'resolved' | null;
  silenced: boolean;
  read: boolean | undefined;
  acknowledgedBy: string | null;
  acknowledgedAt: number | null;
}

/**
 * A notification as it comes off the wire: stored and replayed ones may lack
 * fields, and a level this page does not know reads as info.
 */
export type WireNotification = Partial<Omit<NotificationData, 'level'>> & Pick<NotificationData, 'id'> & { level?: string };

export type FeedAction =
  | { type: 'add'; items: WireNotification[]; read?: boolean }
  | { type: 'load'; items: WireNotification[] }
  | { type: 'ack'; id: string; by?: string | null; at?: string | null }
  | { type: 'read'; id?: string };

function normalize(n: WireNotification): FeedItem {
  return {
    id: String(n.id),
    level: LEVELS.find((l) => l === n.level) ?? 'info',
    title: n.title || '(no title)',
    message: n.message || '',
    timestamp: n.timestamp ? Date.parse(n.timestamp) : Date.now(),
    source: n.source || '',
    state: n.state || null,
    silenced: n.silenced === true, // a silence covers this alert: shown, not delivered (docs/alerting.md)
    read: typeof n.read === 'boolean' ? n.read : undefined,
    acknowledgedBy: n.acknowledged_by || null,
    acknowledgedAt: n.acknowledged_at ? Date.parse(n.acknowledged_at) : null,
  };
}

/**
 * Actions: {type:'add', items, read} (live or loaded notifications; newest
 * first in the list), {type:'ack', id, by, at}, {type:'read', id?}.
 */
export function notificationsReducer(state: FeedItem[], action: FeedAction): FeedItem[] {
  switch (action.type) {
    case 'add': {
      const byId = new Map(state.map((n) => [n.id, n]));
      for (const raw of action.items) {
        const n = normalize(raw);
        n.read = Boolean(action.read);
        const prev = byId.get(n.id);
        // A re-delivered notification keeps what we knew (read state, ack).
        byId.set(n.id, prev ? { ...n, read: Boolean(prev.read || n.read), acknowledgedBy: n.acknowledgedBy || prev.acknowledgedBy, acknowledgedAt: n.acknowledgedAt || prev.acknowledgedAt } : n);
      }
      return [...byId.values()].sort((a, b) => b.timestamp - a.timestamp).slice(0, MAX_NOTIFICATIONS);
    }
    case 'load': {
      // The server's view of this user's read state wins for loaded items.
      const byId = new Map(state.map((n) => [n.id, n]));
      for (const raw of action.items) {
        const n = normalize(raw);
        const prev = byId.get(n.id);
        const read = typeof n.read === 'boolean' ? n.read : Boolean(prev?.read);
        byId.set(n.id, { ...n, read, acknowledgedBy: n.acknowledgedBy || prev?.acknowledgedBy || null, acknowledgedAt: n.acknowledgedAt || prev?.acknowledgedAt || null });
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

export function unreadCount(list: readonly FeedItem[]): number {
  return list.reduce((k, n) => k + (n.read ? 0 : 1), 0);
}

/** The state to show: a firing item that no longer fires reads "resolved". */
export function displayState(n: FeedItem, activeIds: ReadonlySet<string> | null | undefined): FeedItem['state'] {
  if (n.state === 'firing' && activeIds && !activeIds.has(n.id)) return 'resolved';
  return n.state;
}

/** Whether an item still asks for an acknowledgement. */
export function needsAck(n: FeedItem, activeIds: ReadonlySet<string> | null | undefined): boolean {
  return !n.acknowledgedBy && n.level !== 'info' && displayState(n, activeIds) !== 'resolved';
}

export interface NotificationsPanelProps {
  items: FeedItem[];
  canAck: boolean;
  onAck(id: string): void;
  /** Mark one item read, or (no id) all of them. */
  onRead(id?: string): void;
  pendingAcks: ReadonlySet<string>;
  now: number;
  /** The server's unread total (older items included); default: the listed unread. */
  unread?: number;
  activeIds?: ReadonlySet<string> | null;
  unacknowledged?: number | null;
}

export default function NotificationsPanel({ items, canAck, onAck, onRead, pendingAcks, now, unread: unreadTotal, activeIds = null, unacknowledged = null }: NotificationsPanelProps) {
  const headingId = useId();
  const unread = unreadTotal ?? unreadCount(items);
  return (
    <section className="panel notifications" aria-labelledby={headingId} id="notifications">
      <header className="panel-head">
        <h2 id={headingId}>
          Notifications{' '}
          <span className={`badge${unread ? ' badge-hot' : ''}`} data-testid="notifications-unread" aria-label={`${unread} unread`}>
            {unread}
          </span>
          {typeof unacknowledged === 'number' && Number.isFinite(unacknowledged) ? (
            <span className="panel-sub" data-testid="notifications-unacknowledged">
              {unacknowledged} to acknowledge
            </span>
          ) : null}
        </h2>
        <button type="button" className="btn btn-small" onClick={() => onRead()} disabled={!unread}>
          Mark all read
        </button>
      </header>
      {items.length > 3 ? (
        <a className="skip-inline" href="#notifications-end" onClick={(e) => {
          e.preventDefault();
          document.getElementById('notifications-end')?.focus();
        }}>
          Skip the notification list
        </a>
      ) : null}
      {items.length === 0 ? (
        <p className="empty">No notifications yet.</p>
      ) : (
        // The list scrolls on its own (max-height): keyboard users must be able to reach it.
        <ul className="notif-list" tabIndex={0} aria-label="Notification list">
          {items.map((n) => (
            <li
              key={n.id}
              className={`notif notif-${n.level}${n.read ? '' : ' is-unread'}${n.acknowledgedBy ? ' is-acked' : ''}`}
              data-testid="notification-item"
              data-id={n.id}
              data-level={n.level}
              data-acknowledged={n.acknowledgedBy ? 'true' : 'false'}
              data-state={displayState(n, activeIds) || ''}
              data-read={n.read ? 'true' : 'false'}
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
                  {displayState(n, activeIds) ? ` · ${displayState(n, activeIds)}` : ''}
                  {n.silenced ? <span className="silenced-mark"> · silenced</span> : null}
                </span>
                {n.acknowledgedBy ? (
                  <span className="notif-acked">
                    ✓ acknowledged by {n.acknowledgedBy}
                    {n.acknowledgedAt ? ` at ${formatClock(n.acknowledgedAt)}` : ''}
                  </span>
                ) : canAck && needsAck(n, activeIds) ? (
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
      <span id="notifications-end" tabIndex={-1} className="sr-only">End of the notification list</span>
    </section>
  );
}
