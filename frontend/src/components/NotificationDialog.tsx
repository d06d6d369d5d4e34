// A notification opened from its marker on a chart: title, level, time,
// message and state, over the page until closed (Escape or the button).

import { useEffect, useId, useRef } from 'react';
import type { ChartAnnotation } from './chartSetup';

export interface OpenedNotification extends ChartAnnotation {
  message?: string;
  state?: string;
}

export default function NotificationDialog({ note, onClose }: { note: OpenedNotification; onClose(): void }) {
  const headingId = useId();
  const closeRef = useRef<HTMLButtonElement | null>(null);
  useEffect(() => {
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose();
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [onClose]);
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div className="modal note-dialog" role="dialog" aria-modal="true" aria-labelledby={headingId} data-testid="notification-dialog" onClick={(e) => e.stopPropagation()}>
        <h2 id={headingId}>
          <span className={`level level-${note.level}`}>{note.level}</span> {note.title}
        </h2>
        <p>
          <time dateTime={new Date(note.t).toISOString()}>{new Date(note.t).toLocaleString()}</time>
          {note.state ? ` · ${note.state}` : ''}
        </p>
        {note.message ? <p>{note.message}</p> : null}
        <button ref={closeRef} type="button" className="btn" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}
