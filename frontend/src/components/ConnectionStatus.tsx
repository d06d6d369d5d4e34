// Connection status indicator: connecting / connected (latency, updates/s
// that actually arrive) / reconnecting (attempt N, next try in S s) /
// offline / unauthorized.

import { useEffect, useState } from 'react';
import { SECOND_MS } from '../services/constants';
import { formatRate } from '../services/format';
import type { ConnectionView, Status } from '../connection/DashboardConnection';

const COUNTDOWN_TICK_MS = 250;

const LABELS: Record<Status, string> = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
  unauthorized: 'Signed out',
};

/** Seconds left until `retryAt`, re-rendered only while a retry is pending. */
function useCountdown(retryAt: number | null): number | null {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!retryAt) return undefined;
    setNow(Date.now());
    const timer = setInterval(() => setNow(Date.now()), COUNTDOWN_TICK_MS);
    return () => clearInterval(timer);
  }, [retryAt]);
  return retryAt ? Math.max(0, Math.ceil((retryAt - now) / SECOND_MS)) : null;
}

export function describeConnection(
  { status, attempt, latencyMs, updatesPerSecond }: Pick<ConnectionView, 'status' | 'attempt' | 'latencyMs'> & Partial<Pick<ConnectionView, 'updatesPerSecond'>>,
  secondsLeft: number | null,
): string {
  switch (status) {
    case 'connected': {
      // Metrics updates measured on arrival (not all frames, not the asked
      // rate), so it follows a throttle or an admin's interval change.
      const parts = [];
      if (typeof latencyMs === 'number' && Number.isFinite(latencyMs)) parts.push(`${Math.round(latencyMs)} ms`);
      parts.push(`${formatRate(updatesPerSecond ?? 0)} updates/s`);
      return parts.join(' · ');
    }
    case 'reconnecting':
      if (secondsLeft === null) return `attempt ${attempt}, connecting now`;
      return `attempt ${attempt}, next try in ${secondsLeft} s`;
    case 'offline':
      return 'the browser is offline; waiting for the network';
    case 'unauthorized':
      return 'session ended; sign in again';
    default:
      return '';
  }
}

export default function ConnectionStatus({ view, onRetry }: { view: ConnectionView; onRetry: () => void }) {
  const { status, retryAt } = view;
  const secondsLeft = useCountdown(status === 'reconnecting' ? retryAt : null);
  const detail = describeConnection(view, secondsLeft);
  const label = LABELS[status] ?? status;
  return (
    <div className={`conn conn-${status}`} data-testid="connection-status" data-state={status} role="status" aria-live="polite">
      <span className="conn-dot" aria-hidden="true" />
      <span className="conn-text">
        <strong className="conn-label">{label}</strong>
        {detail ? <span className="conn-detail">{detail}</span> : null}
      </span>
      {status === 'reconnecting' && retryAt ? (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Retry now
        </button>
      ) : null}
    </div>
  );
}
