// While the page has no connection, say so for the whole page (issue 16
// item 5): since when, and that what is shown stops there. The dashboard
// dims its tiles and charts at the same time (.app.is-disconnected).

import { useEffect, useState } from 'react';
import { SECOND_MS } from '../services/constants';
import { formatClock, formatDuration } from '../services/format';
import type { Status } from '../connection/DashboardConnection';

const TICK_MS = 1 * SECOND_MS;

export interface DisconnectedBannerProps {
  /** Epoch ms since when the page has had no connection. */
  since: number;
  status: Status;
  onRetry: () => void;
}

export default function DisconnectedBanner({ since, status, onRetry }: DisconnectedBannerProps) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(t);
  }, []);
  const what = status === 'offline' ? 'The browser is offline' : 'Disconnected from dashd';
  return (
    <div className="disconnected" role="status" data-testid="disconnected-banner">
      <span>
        <strong>{what}</strong> since <time dateTime={new Date(since).toISOString()}>{formatClock(since)}</time> (
        {formatDuration((now - since) / SECOND_MS)}). Values and charts stop at the last update received; reconnecting…
      </span>
      {status === 'reconnecting' ? (
        <button type="button" className="btn btn-small" onClick={onRetry}>
          Reconnect now
        </button>
      ) : null}
    </div>
  );
}
