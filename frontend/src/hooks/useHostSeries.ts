// The host panels' view of the series store: the newest value of every
// labelled host series, indexed by family, recomputed at most once a second
// (the panels are tables and bars, not charts), and `history` fills for the
// series the panels chart or list before the live stream has them.
import { useEffect, useMemo, useRef, useState } from 'react';
import { historyToSeries } from '../protocol/parse';
import { createSeriesNameCache } from '../protocol/series';
import type { SendRequest } from '../protocol/hostTypes';
import { SECOND_MS } from '../services/constants';
import { indexSeries, type SeriesIndex, type SeriesValue } from '../services/hostModel';
import type { SeriesStore } from '../services/seriesStore';

/** Panels refresh at most this often. */
export const HOST_REFRESH_MS = SECOND_MS;

export type HostStore = Pick<SeriesStore, 'names' | 'latest' | 'subscribe' | 'mergeHistory' | 'trim' | 'notify'>;

/** Snapshot of the newest labelled values in the store. */
export function snapshotIndex(store: HostStore, parse = createSeriesNameCache()): Map<string, SeriesValue[]> {
  const entries: { name: string; value: number; t: number }[] = [];
  for (const name of store.names()) {
    if (!name.includes('{')) continue;
    const latest = store.latest(name);
    if (latest) entries.push({ name, value: latest.value, t: latest.t });
  }
  return indexSeries(entries, parse);
}

export function useHostIndex(store: HostStore): SeriesIndex {
  const parse = useMemo(() => createSeriesNameCache(), []);
  const [index, setIndex] = useState<SeriesIndex>(() => snapshotIndex(store, parse));
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const lastAt = useRef(-Infinity);

  useEffect(() => {
    let empty = true;
    const refresh = () => {
      timer.current = null;
      lastAt.current = Date.now();
      const next = snapshotIndex(store, parse);
      // Still nothing (collectors off): no new empty index, no re-render.
      if (empty && next.size === 0) return;
      empty = next.size === 0;
      setIndex(next);
    };
    const unsubscribe = store.subscribe(() => {
      if (timer.current !== null) return;
      const wait = lastAt.current + HOST_REFRESH_MS - Date.now();
      // Until the first host values are in, no waiting: they show at once.
      if (wait <= 0 || empty) refresh();
      else timer.current = setTimeout(refresh, wait);
    });
    return () => {
      unsubscribe();
      if (timer.current !== null) clearTimeout(timer.current);
      timer.current = null;
    };
  }, [store, parse]);

  return index;
}

/**
 * Fill `metrics` (names or selectors) from `history` whenever the key
 * (connection, host, window, selection) changes: the panels then show
 * values at once, and a chart its whole window, before the stream has them.
 */
export function useHistoryFill({
  send,
  store,
  metrics,
  from,
  maxPoints,
  enabled,
  host,
  seedOnly = false,
}: {
  send: SendRequest;
  store: HostStore;
  metrics: readonly string[];
  from: string;
  maxPoints: number;
  enabled: boolean;
  host: string | null;
  /** Coarse buckets only for the newest values: they must not widen the charts' gap threshold (the store's bucket size). */
  seedOnly?: boolean;
}): void {
  const key = metrics.join('\u0000');
  useEffect(() => {
    if (!enabled || !key) return undefined;
    let active = true;
    const data: Record<string, unknown> = { metrics: key.split('\u0000'), from, max_points: maxPoints };
    if (host) data.host = host;
    send('history', data).then(
      (reply) => {
        if (!active) return;
        const { series, bucketMs } = historyToSeries(reply);
        store.mergeHistory(series, { bucketMs: seedOnly ? 0 : bucketMs });
        store.trim();
        store.notify();
      },
      // Live values still come; a refused fill only means a later start.
      () => {},
    );
    return () => {
      active = false;
    };
  }, [send, store, key, from, maxPoints, enabled, host, seedOnly]);
}
