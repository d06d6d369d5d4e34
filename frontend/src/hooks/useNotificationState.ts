// Notifications and alert state for the dashboard (issue 16 items 3 and 4),
// out of the dashboard: the feed (notificationsReducer), this user's read
// state from the server (`notification_state` / `notification_read`, so the
// unread count survives a reload), the active alerts (`alerts`, refreshed
// whenever a rule notification or an acknowledgement arrives, so items update
// in place) and acknowledging.

import { useCallback, useEffect, useMemo, useReducer, useRef, useState, type RefObject } from 'react';
import { notificationsReducer, unreadCount, type FeedItem, type WireNotification } from '../components/NotificationsPanel';
import type { ActiveAlert, NotificationAckData, RequestSender } from '../protocol/types';

export const NOTIFICATIONS_ON_CONNECT = 50;
/** Several rule notifications in one burst cause one `alerts` request. */
export const ALERTS_REFRESH_DEBOUNCE_MS = 250;

export interface NotificationStateOptions {
  /** The socket's request function (null while there is no socket). */
  sendRef: RefObject<RequestSender | null>;
  /** Runs for every acknowledgement (ours or another operator's), e.g. to drop its toast. */
  onAcknowledged?: (id: string) => void;
  /** Reports a failed request. */
  onError?: (title: string, message: string) => void;
}

export interface NotificationState {
  items: FeedItem[];
  /** What fires now; null until the first `alerts` reply. */
  alerts: ActiveAlert[] | null;
  /** Notification ids of the active alerts; null until known. */
  activeIds: ReadonlySet<string> | null;
  unread: number;
  /** Warnings and criticals nobody acknowledged yet (server count), null until known. */
  unacknowledged: number | null;
  pendingAcks: ReadonlySet<string>;
  load(): Promise<void>;
  onNotifications(fresh: WireNotification[]): void;
  onAckMessage(data: NotificationAckData): void;
  ack(id: string): Promise<void>;
  markRead(id?: string): Promise<void>;
  refreshAlerts(): Promise<void>;
}

/** A rejected request's error: the daemon's code (when it sent one) and message. */
function requestError(err: unknown): { code?: string; message: string } {
  if (err instanceof Error) return { code: (err as Error & { code?: string }).code, message: err.message };
  return { message: String(err) };
}

export function useNotificationState({ sendRef, onAcknowledged, onError }: NotificationStateOptions): NotificationState {
  const [items, dispatch] = useReducer(notificationsReducer, []);
  // Unread notifications older than the loaded page (the server counts them).
  const [olderUnread, setOlderUnread] = useState(0);
  const [alerts, setAlerts] = useState<ActiveAlert[] | null>(null);
  // Warnings and criticals nobody acknowledged yet (all stored ones, server count).
  const [unacknowledged, setUnacknowledged] = useState<number | null>(null);
  const [pendingAcks, setPendingAcks] = useState<ReadonlySet<string>>(() => new Set());
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const callbacks = useRef({ onAcknowledged, onError });
  callbacks.current = { onAcknowledged, onError };

  const refreshAlerts = useCallback(async () => {
    const send = sendRef.current;
    if (!send) return;
    try {
      const reply = await send('alerts', {});
      setAlerts(Array.isArray(reply.alerts) ? reply.alerts : []);
    } catch {
      // Keep the last known list; the next rule notification asks again.
    }
  }, [sendRef]);

  const refreshCounts = useCallback(async () => {
    const send = sendRef.current;
    if (!send) return;
    try {
      const reply = await send('notification_state', { limit: 1 });
      if (Number.isFinite(reply.unacknowledged)) setUnacknowledged(reply.unacknowledged);
    } catch {
      // Keep the last count; the next change asks again.
    }
  }, [sendRef]);

  /** After notifications or acknowledgements: the alerts (if a rule spoke) and the counts, once per burst. */
  const pending = useRef({ alerts: false });
  const scheduleRefresh = useCallback(
    ({ alerts: withAlerts = false } = {}) => {
      pending.current.alerts ||= withAlerts;
      if (refreshTimer.current !== null) return;
      refreshTimer.current = setTimeout(() => {
        refreshTimer.current = null;
        if (pending.current.alerts) refreshAlerts();
        pending.current.alerts = false;
        refreshCounts();
      }, ALERTS_REFRESH_DEBOUNCE_MS);
    },
    [refreshAlerts, refreshCounts],
  );

  useEffect(
    () => () => {
      if (refreshTimer.current !== null) clearTimeout(refreshTimer.current);
    },
    [],
  );

  /** On (re)connect: the newest notifications with this user's read flags, and the alerts. */
  const load = useCallback(async () => {
    const send = sendRef.current;
    if (!send) return;
    refreshAlerts();
    try {
      const reply = await send('notification_state', { limit: NOTIFICATIONS_ON_CONNECT });
      const list: WireNotification[] = reply.notifications || [];
      dispatch({ type: 'load', items: list });
      const listedUnread = list.filter((n) => n.read === false).length;
      setOlderUnread(Math.max(0, (reply.unread ?? listedUnread) - listedUnread));
      if (Number.isFinite(reply.unacknowledged)) setUnacknowledged(reply.unacknowledged);
    } catch {
      // Shown as empty; live notifications still arrive.
    }
  }, [sendRef, refreshAlerts]);

  const acknowledged = useCallback((id: string, by: string | null | undefined, at: string | null | undefined) => {
    dispatch({ type: 'ack', id, by, at });
    setAlerts((list) => list && list.map((a) => (a.notification_id === String(id) && !a.acknowledged_by ? { ...a, acknowledged_by: by ?? null, acknowledged_at: at ?? null } : a)));
    callbacks.current.onAcknowledged?.(String(id));
  }, []);

  /** Stream messages: live notifications arrive unread. */
  const onNotifications = useCallback(
    (fresh: WireNotification[]) => {
      dispatch({ type: 'add', items: fresh, read: false });
      scheduleRefresh({ alerts: fresh.some((n) => String(n.source || '').startsWith('rule:')) });
    },
    [scheduleRefresh],
  );
  const onAckMessage = useCallback(
    (data: NotificationAckData) => {
      acknowledged(data.id, data.acknowledged_by, data.acknowledged_at);
      scheduleRefresh({ alerts: true });
    },
    [acknowledged, scheduleRefresh],
  );

  const ack = useCallback(
    async (id: string) => {
      setPendingAcks((s) => new Set(s).add(id));
      try {
        const send = sendRef.current;
        if (!send) throw new Error('not connected');
        const reply = await send('ack', { notification_id: id });
        acknowledged(reply.id ?? id, reply.acknowledged_by, reply.acknowledged_at);
      } catch (err) {
        callbacks.current.onError?.('Could not acknowledge', requestError(err).message);
      } finally {
        setPendingAcks((s) => {
          const n = new Set(s);
          n.delete(id);
          return n;
        });
      }
    },
    [sendRef, acknowledged],
  );

  /** Mark one notification (id) or everything (no id) read, on the server too. */
  const markRead = useCallback(
    async (id?: string) => {
      dispatch({ type: 'read', id });
      if (id === undefined) setOlderUnread(0);
      const send = sendRef.current;
      if (!send) return;
      try {
        await send('notification_read', id === undefined ? { all: true } : { ids: [id] });
      } catch (err) {
        // A notification only this page knows of (not stored yet) is fine to skip.
        const { code, message } = requestError(err);
        if (code && code !== 'not_found') callbacks.current.onError?.('Could not mark read', message);
      }
    },
    [sendRef],
  );

  const unread = unreadCount(items) + olderUnread;
  const activeIds = useMemo(
    () => (alerts ? new Set(alerts.flatMap((a) => (a.notification_id ? [a.notification_id] : []))) : null),
    [alerts],
  );
  return { items, alerts, activeIds, unread, unacknowledged, pendingAcks, load, onNotifications, onAckMessage, ack, markRead, refreshAlerts };
}
