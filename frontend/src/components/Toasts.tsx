// Toasts for critical notifications and errors. Each toast dismisses itself;
// its timer is owned by the toast and cleared when it goes. A critical toast
// for a notification carries an Acknowledge action (operators and admins)
// and goes away as soon as anyone acknowledges it (Dashboard drops it).

import { useEffect } from 'react';

export const TOAST_MS = 10_000;
export const MAX_TOASTS = 3;

function Toast({ toast, onDismiss, onAck }) {
  useEffect(() => {
    const timer = setTimeout(() => onDismiss(toast.key), TOAST_MS);
    return () => clearTimeout(timer);
  }, [toast.key, onDismiss]);
  return (
    <div className={`toast toast-${toast.level}`} role="alert" data-testid="toast" data-notification={toast.notificationId || ''}>
      <div className="toast-body">
        <strong>{toast.title}</strong>
        {toast.message ? <p>{toast.message}</p> : null}
        {toast.notificationId && onAck ? (
          <button type="button" className="btn btn-small" onClick={() => onAck(toast.notificationId)}>
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

export default function Toasts({ toasts, onDismiss, onAck }) {
  return (
    <div className="toasts" aria-live="assertive">
      {toasts.map((t) => (
        <Toast key={t.key} toast={t} onDismiss={onDismiss} onAck={onAck} />
      ))}
    </div>
  );
}
