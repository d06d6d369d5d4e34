// Overview of every host on the stream (the hub's own and its agents'):
// one small card per host with CPU and memory sparklines — small multiples
// on a shared 0–100 % scale so hosts compare at a glance. Clicking a card
// shows that host in the main dashboard.
//
// The series live outside React state (createHostsSeries), fed from the
// socket's batches; the component re-reads them once per REFRESH_MS.

import { useEffect, useState } from 'react';
import type { Point, Sample } from '../protocol/types';

export const OVERVIEW_METRICS = [
  { name: 'cpu_usage', label: 'CPU' },
  { name: 'memory_usage', label: 'Mem' },
];
export const OVERVIEW_POINTS = 120;
const REFRESH_MS = 1000;
const STALE_MS = 15_000;
const SPARK_WIDTH = 120;
const SPARK_HEIGHT = 24;

/** Per-host ring buffers of the overview metrics. */
export interface HostsSeries {
  add(sample: Pick<Sample, 't' | 'host' | 'values'> | null | undefined): void;
  points(host: string, metric: string): Point[];
  /** When the host's newest sample was taken (epoch ms), or null. */
  lastSeen(host: string): number | null;
}

export function createHostsSeries(maxPoints = OVERVIEW_POINTS): HostsSeries {
  const byHost = new Map<string, { t: number; series: Record<string, Point[]> }>();
  return {
    add(sample) {
      if (!sample || !sample.host) return;
      let entry = byHost.get(sample.host);
      if (!entry) {
        entry = { t: 0, series: Object.fromEntries(OVERVIEW_METRICS.map((m) => [m.name, []])) };
        byHost.set(sample.host, entry);
      }
      if (sample.t <= entry.t) return; // replayed or out of order: the live line only moves forward
      entry.t = sample.t;
      for (const { name } of OVERVIEW_METRICS) {
        const value = sample.values?.[name];
        if (!Number.isFinite(value)) continue;
        const series = entry.series[name];
        series.push({ x: sample.t, y: value });
        if (series.length > maxPoints) series.splice(0, series.length - maxPoints);
      }
    },
    points(host, metric) {
      return byHost.get(host)?.series[metric] ?? [];
    },
    lastSeen(host) {
      return byHost.get(host)?.t ?? null;
    },
  };
}

/** SVG polyline points for a 0–100 % series in a width × height box. */
export function sparkPath(points: readonly Point[], width = SPARK_WIDTH, height = SPARK_HEIGHT): string {
  if (points.length < 2) return '';
  const x0 = points[0].x;
  const span = points[points.length - 1].x - x0 || 1;
  return points
    .map((p) => {
      const x = ((p.x - x0) / span) * (width - 2) + 1;
      const y = height - 1 - (Math.max(0, Math.min(100, p.y)) / 100) * (height - 2);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
}

interface HostCardProps {
  host: string;
  series: HostsSeries;
  current: string | null | undefined;
  onSelect(host: string): void;
  now: number;
}

function HostCard({ host, series, current, onSelect, now }: HostCardProps) {
  const lastSeen = series.lastSeen(host);
  const stale = lastSeen !== null && now - lastSeen > STALE_MS;
  const values = OVERVIEW_METRICS.map((m) => {
    const points = series.points(host, m.name);
    return { ...m, points, latest: points.length ? points[points.length - 1].y : null };
  });
  const summary = values.map((v) => `${v.label} ${v.latest === null ? 'no data' : `${v.latest.toFixed(0)} %`}`).join(', ');
  return (
    <li>
      <button
        type="button"
        className={`host-card${host === current ? ' host-card-current' : ''}${stale ? ' host-card-stale' : ''}`}
        data-testid={`host-card-${host}`}
        aria-pressed={host === current}
        // The visible text is the accessible name (WCAG 2.5.3 label in name);
        // what only the styling shows is added as hidden text.
        title={`${host}: ${summary}`}
        onClick={() => onSelect(host)}
      >
        <span className="host-card-name">{host}</span>
        {values.map((v) => (
          <span className="host-card-row" key={v.name}>
            <span className="host-card-label">{v.label}</span>
            <svg className="host-card-spark" width={SPARK_WIDTH} height={SPARK_HEIGHT} viewBox={`0 0 ${SPARK_WIDTH} ${SPARK_HEIGHT}`} aria-hidden="true">
              <polyline points={sparkPath(v.points)} fill="none" stroke="currentColor" strokeWidth="1.5" />
            </svg>
            <span className="host-card-value">
              {v.latest === null ? <span aria-hidden="true">–</span> : `${v.latest.toFixed(0)} %`}
              {v.latest === null ? <span className="sr-only">no data</span> : null}
            </span>
          </span>
        ))}
        {stale ? <span className="sr-only">, no recent data</span> : null}
      </button>
    </li>
  );
}

/** Small multiples: one card per host in `hosts`; `current` is highlighted. */
export interface HostsOverviewProps {
  series: HostsSeries;
  hosts: readonly string[] | null | undefined;
  /** The host the dashboard shows. */
  current: string | null | undefined;
  onSelect(host: string): void;
  refreshMs?: number;
}

export default function HostsOverview({ series, hosts, current, onSelect, refreshMs = REFRESH_MS }: HostsOverviewProps) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), refreshMs);
    return () => clearInterval(timer);
  }, [refreshMs]);
  if (!hosts || hosts.length < 2) return null;
  return (
    <section className="hosts-overview" aria-label="All hosts">
      <ul className="hosts-overview-grid">
        {hosts.map((h) => (
          <HostCard key={h} host={h} series={series} current={current} onSelect={onSelect} now={now} />
        ))}
      </ul>
    </section>
  );
}
