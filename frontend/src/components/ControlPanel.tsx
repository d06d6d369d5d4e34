// Dashboard controls: time window, pause/resume, metric selection (subscribe),
// update rate (set_rate) and theme. On narrow screens the panel collapses
// behind a "Controls" menu button in the header (see Dashboard).

import { useId } from 'react';
import { METRIC_GROUPS, RATE_CHOICES, TIME_WINDOWS } from '../services/constants';
import { formatRate } from '../services/format';
import { NETWORK_UNITS } from '../services/units';

const isRate = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

export interface ControlPanelProps {
  id: string;
  open: boolean;
  windowId: string;
  onWindow: (id: string) => void;
  paused: boolean;
  onPause: () => void;
  bufferedWhilePaused: number;
  rateId: string;
  onRate: (id: string) => void;
  /** The rate the server granted (set_rate reply), if known. */
  effectiveHz?: number | null;
  groups: readonly string[];
  onToggleGroup: (id: string) => void;
  theme: string;
  onTheme: (theme: string) => void;
  hosts?: readonly string[];
  host?: string | null;
  onHost?: (host: string) => void;
  disabled?: boolean;
  receivedHz?: number | null;
  networkUnit?: string;
  onNetworkUnit?: ((unit: string) => void) | null;
}

export default function ControlPanel({
  id,
  open,
  windowId,
  onWindow,
  paused,
  onPause,
  bufferedWhilePaused,
  rateId,
  onRate,
  effectiveHz,
  groups,
  onToggleGroup,
  theme,
  onTheme,
  hosts = [],
  host,
  onHost,
  disabled,
  receivedHz = null,
  networkUnit = 'bytes',
  onNetworkUnit,
}: ControlPanelProps) {
  const unitLabel = useId();
  const rateLabel = useId();
  const themeLabel = useId();
  const hostLabel = useId();
  return (
    <section id={id} className={`controls${open ? ' is-open' : ''}`} aria-label="Dashboard controls">
      <fieldset className="control seg">
        <legend>Time window</legend>
        <div className="seg-group">
          {TIME_WINDOWS.map((w) => (
            <label key={w.id} className={`seg-item${windowId === w.id ? ' is-active' : ''}`}>
              <input
                type="radio"
                name="time-window"
                value={w.id}
                checked={windowId === w.id}
                onChange={() => onWindow(w.id)}
              />
              <span>{w.label}</span>
            </label>
          ))}
        </div>
      </fieldset>

      <div className="control">
        <span className="control-label" aria-hidden="true">Stream</span>
        <button
          type="button"
          className={`btn${paused ? ' btn-primary' : ''}`}
          aria-pressed={paused}
          onClick={onPause}
          data-testid="pause-button"
        >
          {paused ? '▶ Resume' : '❚❚ Pause'}
        </button>
        {paused && bufferedWhilePaused > 0 ? (
          <span className="control-hint" role="status">{bufferedWhilePaused} updates buffered</span>
        ) : null}
      </div>

      <div className="control">
        <label className="control-label" htmlFor={rateLabel}>Update rate</label>
        <select id={rateLabel} value={rateId} onChange={(e) => onRate(e.target.value)} disabled={disabled}>
          {RATE_CHOICES.map((r) => (
            <option key={r.id} value={r.id}>
              {r.label}
            </option>
          ))}
        </select>
        {isRate(effectiveHz) ? (
          <span className="control-hint" data-testid="effective-rate">{formatRate(effectiveHz)} Hz</span>
        ) : null}
        {isRate(receivedHz) ? (
          <span className="control-hint" data-testid="received-rate">receiving {formatRate(receivedHz)}/s</span>
        ) : null}
      </div>

      <fieldset className="control metrics-select" disabled={disabled}>
        <legend>Metrics</legend>
        <div className="chips">
          {METRIC_GROUPS.map((g) => (
            <label key={g.id} className={`chip${groups.includes(g.id) ? ' is-on' : ''}`}>
              <input type="checkbox" checked={groups.includes(g.id)} onChange={() => onToggleGroup(g.id)} />
              <span>{g.label}</span>
            </label>
          ))}
        </div>
      </fieldset>

      {hosts.length > 1 ? (
        <div className="control">
          <label className="control-label" htmlFor={hostLabel}>Host</label>
          <select id={hostLabel} value={host ?? undefined} onChange={(e) => onHost?.(e.target.value)}>
            {hosts.map((h) => (
              <option key={h} value={h}>
                {h}
              </option>
            ))}
          </select>
        </div>
      ) : null}

      {onNetworkUnit ? (
        <div className="control">
          <label className="control-label" htmlFor={unitLabel}>Network units</label>
          <select id={unitLabel} value={networkUnit} onChange={(e) => onNetworkUnit(e.target.value)}>
            {NETWORK_UNITS.map((u) => (
              <option key={u.id} value={u.id}>
                {u.label}
              </option>
            ))}
          </select>
        </div>
      ) : null}

      <div className="control">
        <label className="control-label" htmlFor={themeLabel}>Theme</label>
        <select id={themeLabel} value={theme} onChange={(e) => onTheme(e.target.value)}>
          <option value="system">System</option>
          <option value="light">Light</option>
          <option value="dark">Dark</option>
        </select>
      </div>
    </section>
  );
}
