// The grid of key-metric tiles. It subscribes to the series store itself, so
// a flush re-renders only this grid (once per animation frame at most), not
// the dashboard around it. While paused it keeps showing the frozen values.

import { memo, useEffect, useRef, useState, useSyncExternalStore } from 'react';
import MetricTile, { SPARK_POINTS } from './MetricTile';
import { PALETTE } from './chartSetup';
import type { Point } from '../protocol/types';
import type { Theme } from '../hooks/useTheme';
import { DEFAULT_UNITS, MINUTE_MS, TILE_METRICS, type TileMetric } from '../services/constants';
import type { Latest, SeriesStore } from '../services/seriesStore';

const STALE_AFTER_MS = 1 * MINUTE_MS;
const CLOCK_TICK_MS = 15_000;

interface TileSnapshot {
  version: number;
  key?: string;
  tiles: Array<TileMetric & { latest: Latest | undefined; points: Point[] }>;
}

export interface MetricTilesProps {
  store: SeriesStore;
  /** Units from the catalogue, by metric name. */
  units: Readonly<Record<string, string>>;
  cores?: number;
  /** Metric groups shown (constants METRIC_GROUPS ids). */
  groups: readonly string[];
  /** Metrics in the catalogue; null before it arrives. */
  available: ReadonlySet<string> | null;
  paused: boolean;
  theme: Theme;
  gapMs?: number;
}

function MetricTiles({ store, units, cores, groups, available, paused, theme, gapMs }: MetricTilesProps) {
  const version = useSyncExternalStore(store.subscribe, () => store.version);
  const frozen = useRef(version);
  if (!paused) frozen.current = version;
  const shown = paused ? frozen.current : version;
  // Staleness labels need a clock, but one that ticks slowly.
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), CLOCK_TICK_MS);
    return () => clearInterval(t);
  }, []);

  const snapshot = useRef<TileSnapshot>({ version: -1, tiles: [] });
  const key = `${groups.join()}|${available ? [...available].join() : ''}`;
  if (snapshot.current.version !== shown || snapshot.current.key !== key) {
    snapshot.current = {
      version: shown,
      key,
      // Before the catalogue arrives every key metric gets a placeholder tile,
      // so the layout does not jump when the first sample lands.
      tiles: TILE_METRICS.filter((t) => groups.includes(t.group) && (!available || available.has(t.name))).map((t) => {
        const arr = store.get(t.name);
        return { ...t, latest: store.latest(t.name), points: arr.slice(-SPARK_POINTS) };
      }),
    };
  }
  const newest = store.newestTime();
  const sparkColor = (PALETTE[theme] || PALETTE.light)[0];

  return (
    <section className="tiles" aria-label="Key metrics" data-version={shown}>
      {snapshot.current.tiles.map((t) => (
        <MetricTile
          key={t.name}
          name={t.name}
          label={t.label}
          unit={units[t.name] ?? DEFAULT_UNITS[t.name]}
          latest={t.latest}
          points={t.points}
          cores={cores}
          sparkColor={sparkColor}
          stale={t.latest !== undefined && newest - t.latest.t > STALE_AFTER_MS}
          now={Number.isFinite(newest) ? Math.max(newest, now) : now}
          gapMs={gapMs}
        />
      ))}
    </section>
  );
}

/** Memoized: a range change re-renders the dashboard, not the tiles (they follow the store). */
export default memo(MetricTiles);
