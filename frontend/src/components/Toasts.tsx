// Toasts for critical notifications and errors. Each toast dismisses itself;
// its timer is owned by the toast and cleared when it goes. A critical toast
// for a notification carries an Acknowledge action (operators and admins)
// and goes away as soon as anyone acknowledges it (Dashboard drops it).

import { useEffect } from 'react';
import type { NotificationLevel } from '../protocol/types';

export const TOAST_MS = 10_000;
export const MAX_TOASTS = 3;

/** A toast to raise: a critical notification (with its id) or an error report. */
export interface ToastContent {
  level: NotificationLevel;
  title: string;
  message?: string;
  /** Set for a notification's toast: it offers Acknowledge and goes when anyone acknowledges. */
  notificationId?: string;
}

export interface ToastItem extends ToastContent {
  key: number;
}

interface ToastActions {
  onDismiss(key: number): void;
  /** Null when this user may not acknowledge. */
  onAck?: ((id: string) => void) | null;
}

function Toast({ toast, onDismiss, onAck }: ToastActions & { toast: ToastItem }) {
  useEffect(() => {
    const timer = setTimeout(() => onDismiss(toast.key), TOAST_MS);
    return () => clearTimeout(timer);
  }, [toast.key, onDismiss]);
  const { notificationId } = toast;
  return (
    <div className={`toast toast-${toast.level}`} role="alert" data-testid="toast" data-notification={toast.notificationId || ''}>
      <div className="toast-body">
        <strong>{toast.title}</strong>
        {toast.message ? <p>{toast.message}</p> : null}
        {notificationId && onAck ? (
          <button type="button" className="btn btn-small" onClick={() => onAck(notificationId)}>
            Acknowledge
          </button>
        ) : null}
      </div>
      <button type="button" className="icon-btn" onClick={() => onDismiss(toast.key)} aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}

export default function Toasts({ toasts, onDismiss, onAck }: ToastActions & { toasts: ToastItem[] }) {
  return (
    <div className="toasts" aria-live="assertive">
      {toasts.map((t) => (
        <Toast key={t.key} toast={t} onDismiss={onDismiss} onAck={onAck} />
      ))}
    </div>
  );
}
