// The time range above the charts: what is shown, an absolute from/to with
// the browser's own calendar (`datetime-local`, keyboard- and screen-reader
// friendly), pan and zoom-out buttons, and "Back to live". The live ranges
// themselves are the "Time window" radios in ControlPanel.

import { useEffect, useId, useState, type FormEvent } from 'react';
import { fromLocalInput, resolveRange, spanLabel, toLocalInput, type ViewRange } from '../services/timeRange';
import { formatClock } from '../services/format';

/** Share of the span one pan button moves the view. */
export const PAN_STEP = 0.5;

export interface TimeRangeBarProps {
  range: ViewRange;
  /** ms; the picker's "now" (its live edge and its inputs' max). */
  now: number;
  onApply(from: number, to: number): void;
  onPan(fraction: number): void;
  onZoomOut(): void;
  onBackToLive(): void;
}

export default function TimeRangeBar({ range, now, onApply, onPan, onZoomOut, onBackToLive }: TimeRangeBarProps) {
  const fromId = useId();
  const toId = useId();
  const live = range.kind === 'live';
  const shown = resolveRange(range, now);
  const [fromText, setFromText] = useState(() => toLocalInput(shown.from));
  const [toText, setToText] = useState(() => toLocalInput(shown.to));
  const [error, setError] = useState<string | null>(null);

  // The inputs follow the view when it changes elsewhere (zoom, pan, a link).
  const rangeKey = range.kind === 'live' ? range.id : `${range.from}-${range.to}`;
  useEffect(() => {
    const r = resolveRange(range, Date.now());
    setFromText(toLocalInput(r.from));
    setToText(toLocalInput(r.to));
    setError(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- only when the range itself changes
  }, [rangeKey]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const from = fromLocalInput(fromText);
    const to = fromLocalInput(toText);
    if (!Number.isFinite(from) || !Number.isFinite(to)) return setError('Enter both a start and an end.');
    if (to <= from) return setError('The end must be after the start.');
    setError(null);
    onApply(from, Math.min(to, Math.floor(Date.now() / 1000) * 1000));
  };

  const sameDay = new Date(shown.from).toDateString() === new Date(shown.to).toDateString();
  const describe = live
    ? `Live: the last ${spanLabel(range.spanMs)}`
    : `${sameDay ? new Date(shown.from).toLocaleDateString() + ' ' + formatClock(shown.from) : new Date(shown.from).toLocaleString()} – ${sameDay ? formatClock(shown.to) : new Date(shown.to).toLocaleString()}`;

  return (
    <section className="range-bar" aria-label="Time range" data-testid="range-bar">
      <p className="range-now" role="status" data-testid="range-summary">
        {describe}
        {live ? null : <span className="range-paused"> · paused, live data keeps arriving</span>}
      </p>
      <div className="range-buttons">
        <button type="button" className="btn btn-small" onClick={() => onPan(-PAN_STEP)} aria-label="Earlier (pan left)">
          ◀ Earlier
        </button>
        <button type="button" className="btn btn-small" onClick={() => onPan(PAN_STEP)} disabled={live} aria-label="Later (pan right)">
          Later ▶
        </button>
        <button type="button" className="btn btn-small" onClick={onZoomOut}>
          Zoom out
        </button>
        <button type="button" className={`btn btn-small${live ? '' : ' btn-primary'}`} onClick={onBackToLive} disabled={live} data-testid="back-to-live">
          Back to live
        </button>
      </div>
      <form className="range-form" onSubmit={submit}>
        <label htmlFor={fromId}>From</label>
        <input id={fromId} type="datetime-local" value={fromText} max={toLocalInput(now)} onChange={(e) => setFromText(e.target.value)} data-testid="range-from" />
        <label htmlFor={toId}>To</label>
        <input id={toId} type="datetime-local" value={toText} max={toLocalInput(now)} onChange={(e) => setToText(e.target.value)} data-testid="range-to" />
        <button type="submit" className="btn btn-small">Show range</button>
        {error ? <span className="range-error" role="alert">{error}</span> : null}
      </form>
    </section>
  );
}
