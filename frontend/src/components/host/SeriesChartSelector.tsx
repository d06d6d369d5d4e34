// A chart of one device's series with a selector for the device (an
// interface, a disk): the live chart is the dashboard's own MetricsChart on
// the shared series store, filled from `history` for the window when the
// selection changes.
import { useId } from 'react';
import MetricsChart from '../MetricsChart';
import type { SendRequest } from '../../protocol/hostTypes';
import { useHistoryFill } from '../../hooks/useHostSeries';
import { HOUR_MS, MINUTE_MS } from '../../services/constants';
import type { SeriesStore } from '../../services/seriesStore';

/** Points asked per series when filling the chart's window (as the dashboard's own charts). */
const HISTORY_MAX_POINTS = 1000;

export function relativeSpan(ms: number): string {
  return ms >= HOUR_MS ? `-${ms / HOUR_MS}h` : `-${Math.round(ms / MINUTE_MS)}m`;
}

export interface ChartContext {
  store: SeriesStore;
  send: SendRequest;
  connected: boolean;
  host: string | null;
  windowMs: number;
  paused: boolean;
  theme: string;
  gapMs?: number;
}

export interface SeriesChartSelectorProps extends ChartContext {
  id: string;
  /** "Interface", "Disk". */
  label: string;
  options: readonly string[];
  selected: string;
  onSelect: (value: string) => void;
  title: string;
  unit: string;
  metrics: string[];
  labels: Record<string, string>;
}

export default function SeriesChartSelector(props: SeriesChartSelectorProps) {
  const { id, label, options, selected, onSelect, title, unit, metrics, labels, store, send, connected, host, windowMs, paused, theme, gapMs } = props;
  const selectId = useId();
  useHistoryFill({
    send,
    store: store,
    metrics,
    from: relativeSpan(windowMs),
    maxPoints: HISTORY_MAX_POINTS,
    enabled: connected && Boolean(selected),
    host,
  });
  return (
    <div className="host-chart">
      <div className="host-toolbar">
        <label htmlFor={selectId}>{label}</label>
        <select id={selectId} value={selected} onChange={(e) => onSelect(e.target.value)} data-testid={`${id}-select`}>
          {options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </div>
      <MetricsChart
        id={id}
        title={title}
        unit={unit}
        yMax={undefined}
        metrics={metrics}
        labels={labels}
        store={store}
        windowMs={windowMs}
        paused={paused}
        theme={theme}
        gapMs={gapMs}
        registry={null}
        outages={null}
      />
    </div>
  );
}
