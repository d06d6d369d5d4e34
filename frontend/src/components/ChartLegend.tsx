// The HTML legend under a live chart (issue 16 item 10): each series is a
// toggle button (hide/show), "only" isolates it (again: show all), and the
// min / avg / max of the visible range sit next to it. Buttons are real
// buttons, so keyboard and screen-reader users get the same control.

export interface LegendSeries {
  metric: string;
  label: string;
  color?: string;
}

export interface LegendStats {
  min: number;
  avg: number;
  max: number;
}

export interface ChartLegendProps {
  title: string;
  series: readonly LegendSeries[];
  hidden: ReadonlySet<string>;
  stats?: Readonly<Record<string, LegendStats>>;
  format: (value: number) => string;
  onToggle: (metric: string) => void;
  onIsolate: (metric: string) => void;
}

export default function ChartLegend({ title, series, hidden, stats, format, onToggle, onIsolate }: ChartLegendProps) {
  const visible = series.filter((s) => !hidden.has(s.metric));
  return (
    <ul className="chart-legend" aria-label={`${title} series`}>
      {series.map((s) => {
        const on = !hidden.has(s.metric);
        const st = stats?.[s.metric];
        const only = on && visible.length === 1;
        return (
          <li key={s.metric} className={on ? '' : 'is-hidden'} data-testid={`legend-${s.metric}`}>
            <button type="button" className="legend-toggle" aria-pressed={on} onClick={() => onToggle(s.metric)}>
              <span className="legend-swatch" style={{ background: s.color }} aria-hidden="true" />
              {s.label}
              <span className="sr-only">{on ? ' (shown)' : ' (hidden)'}</span>
            </button>
            <button
              type="button"
              className="legend-only"
              onClick={() => onIsolate(s.metric)}
              aria-label={only ? `Show all ${title} series` : `Show only ${s.label}`}
            >
              {only ? 'all' : 'only'}
            </button>
            {st ? (
              <span className="legend-stats" data-testid={`legend-stats-${s.metric}`}>
                min {format(st.min)} · avg {format(st.avg)} · max {format(st.max)}
              </span>
            ) : null}
          </li>
        );
      })}
    </ul>
  );
}
