// Notifications and alert state for the dashboard (issue 16 items 3 and 4),
// out of Dashboard.jsx: the feed (notificationsReducer), this user's read
// state from the server (`notification_state` / `notification_read`, so the
// unread count survives a reload), the active alerts (`alerts`, refreshed
// whenever a rule notification or an acknowledgement arrives, so items update
// in place) and acknowledging.

import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { notificationsReducer, unreadCount } from '../components/NotificationsPanel';

export const NOTIFICATIONS_ON_CONNECT = 50;
/** Several rule notifications in one burst cause one `alerts` request. */
export const ALERTS_REFRESH_DEBOUNCE_MS = 250;

/**
 * sendRef: ref to the socket's request function. onAcknowledged(id) runs for
 * every acknowledgement (ours or another operator's), e.g. to drop its toast.
 * onError(title, message) reports a failed request.
 */
export function useNotificationState({ sendRef, onAcknowledged, onError }) {
  const [items, dispatch] = useReducer(notificationsReducer, []);
  // Unread notifications older than the loaded page (the server counts them).
  const [olderUnread, setOlderUnread] = useState(0);
  const [alerts, setAlerts] = useState(null);
  // Warnings and criticals nobody acknowledged yet (all stored ones, server count).
  const [unacknowledged, setUnacknowledged] = useState(null);
  const [pendingAcks, setPendingAcks] = useState(() => new Set());
  const refreshTimer = useRef(null);
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

  useEffect(() => () => clearTimeout(refreshTimer.current), []);

  /** On (re)connect: the newest notifications with this user's read flags, and the alerts. */
  const load = useCallback(async () => {
    const send = sendRef.current;
    if (!send) return;
    refreshAlerts();
    try {
      const reply = await send('notification_state', { limit: NOTIFICATIONS_ON_CONNECT });
      const list = reply.notifications || [];
      dispatch({ type: 'load', items: list });
      const listedUnread = list.filter((n) => n.read === false).length;
      setOlderUnread(Math.max(0, (reply.unread ?? listedUnread) - listedUnread));
      if (Number.isFinite(reply.unacknowledged)) setUnacknowledged(reply.unacknowledged);
    } catch {
      // Shown as empty; live notifications still arrive.
    }
  }, [sendRef, refreshAlerts]);

  const acknowledged = useCallback((id, by, at) => {
    dispatch({ type: 'ack', id, by, at });
    setAlerts((list) => list && list.map((a) => (a.notification_id === String(id) && !a.acknowledged_by ? { ...a, acknowledged_by: by, acknowledged_at: at } : a)));
    callbacks.current.onAcknowledged?.(String(id));
  }, []);

  /** Stream messages: live notifications arrive unread. */
  const onNotifications = useCallback(
    (fresh) => {
      dispatch({ type: 'add', items: fresh, read: false });
      scheduleRefresh({ alerts: fresh.some((n) => String(n.source || '').startsWith('rule:')) });
    },
    [scheduleRefresh],
  );
  const onAckMessage = useCallback(
    (data) => {
      acknowledged(data.id, data.acknowledged_by, data.acknowledged_at);
      scheduleRefresh({ alerts: true });
    },
    [acknowledged, scheduleRefresh],
  );

  const ack = useCallback(
    async (id) => {
      setPendingAcks((s) => new Set(s).add(id));
      try {
        const reply = await sendRef.current('ack', { notification_id: id });
        acknowledged(reply.id ?? id, reply.acknowledged_by, reply.acknowledged_at);
      } catch (err) {
        callbacks.current.onError?.('Could not acknowledge', err.message);
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
    async (id) => {
      dispatch({ type: 'read', id });
      if (id === undefined) setOlderUnread(0);
      const send = sendRef.current;
      if (!send) return;
      try {
        await send('notification_read', id === undefined ? { all: true } : { ids: [id] });
      } catch (err) {
        // A notification only this page knows of (not stored yet) is fine to skip.
        if (err.code && err.code !== 'not_found') callbacks.current.onError?.('Could not mark read', err.message);
      }
    },
    [sendRef],
  );

  const unread = unreadCount(items) + olderUnread;
  const activeIds = useMemo(() => (alerts ? new Set(alerts.map((a) => a.notification_id)) : null), [alerts]);
  return { items, alerts, activeIds, unread, unacknowledged, pendingAcks, load, onNotifications, onAckMessage, ack, markRead, refreshAlerts };
}
