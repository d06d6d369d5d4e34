// While the page has no connection, say so for the whole page (issue 16
// item 5): since when, and that what is shown stops there. The dashboard
// dims its tiles and charts at the same time (.app.is-disconnected).

import { useEffect, useState } from 'react';
import { SECOND_MS, formatClock, formatDuration } from '../services/dashboardService.js';

const TICK_MS = 1 * SECOND_MS;

export default function DisconnectedBanner({ since, status, onRetry }) {
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
