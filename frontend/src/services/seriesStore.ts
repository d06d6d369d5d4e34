// Bounded time-series buffers for the live charts and tiles.
//
// The store lives outside React state: the socket hook hands it batches of
// samples at most once per animation frame, charts read its arrays directly
// and redraw in place, and tiles re-render from its `version`. Every buffer is
// bounded by time (the largest chart window plus slack) and by count, so a
// dashboard left open for days keeps a flat memory footprint.

import type { Point, Sample } from '../protocol/types';
import { MAX_WINDOW_MS, MINUTE_MS } from './constants';

/** A stored point; `s` is the stream seq of a live sample (absent for history). */
export interface StoredPoint {
  x: number;
  y: number;
  s?: number;
}

export interface Latest {
  value: number;
  t: number;
  seq: number | undefined;
}

export interface SeriesStoreOptions {
  retentionMs?: number;
  maxPoints?: number;
  trimSlackMs?: number;
  maxSeqLog?: number;
}

export interface SeriesStore {
  appendSample(sample: Pick<Sample, 't' | 'seq' | 'values'> & Partial<Sample>): void;
  noteSeq(seq: number | undefined): void;
  mergeHistory(historySeries: Record<string, Point[]>, opts?: { bucketMs?: number }): void;
  trim(now?: number): void;
  get(name: string): StoredPoint[];
  names(): string[];
  latest(name: string): Latest | undefined;
  newestTime(): number;
  oldestTime(names: readonly string[]): number;
  sampleSeqs(): number[];
  streamSeqs(): number[];
  pointCount(): number;
  bucketMs(): number;
  clear(): void;
  readonly version: number;
  subscribe(fn: (version: number) => void): () => void;
  notify(): void;
}

/** Keep a little more than the largest window so a window switch has data at its left edge. */
export const RETENTION_MS = MAX_WINDOW_MS + 2 * MINUTE_MS;
/** Hard cap per series: 1 h at 2 Hz plus history buckets, with headroom. */
export const MAX_POINTS_PER_SERIES = 10_000;
/** Trim only once this much data is past retention, to amortise the splice. */
export const TRIM_SLACK_MS = 30 * 1000;
/** Stream seqs remembered for gap checks (metrics and notifications). */
export const MAX_SEQ_LOG = 20_000;

function lowerBound(arr: readonly StoredPoint[], x: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid].x < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function createSeriesStore({
  retentionMs = RETENTION_MS,
  maxPoints = MAX_POINTS_PER_SERIES,
  trimSlackMs = TRIM_SLACK_MS,
  maxSeqLog = MAX_SEQ_LOG,
}: SeriesStoreOptions = {}): SeriesStore {
  /** name -> [{x, y, s?}] sorted by x; `s` is the stream seq of live points. */
  const series = new Map<string, StoredPoint[]>();
  /** name -> {value, t, seq} for the newest sample of each metric. */
  const latest = new Map<string, Latest>();
  /** seqs of every stream message applied, in arrival order (bounded ring). */
  let seqLog: number[] = [];
  let newestT = -Infinity;
  let historyBucketMs = 0;
  let version = 0;
  const listeners = new Set<(version: number) => void>();

  function arrayFor(name: string): StoredPoint[] {
    let arr = series.get(name);
    if (!arr) {
      arr = [];
      series.set(name, arr);
    }
    return arr;
  }

  function insertPoint(arr: StoredPoint[], p: StoredPoint): void {
    const n = arr.length;
    if (n === 0 || arr[n - 1].x < p.x) {
      arr.push(p);
      return;
    }
    const i = lowerBound(arr, p.x);
    if (i < n && arr[i].x === p.x) {
      // Same timestamp: a live sample wins over a history bucket.
      if (p.s !== undefined || arr[i].s === undefined) arr[i] = p;
      return;
    }
    arr.splice(i, 0, p);
  }

  function noteSeq(seq: number | undefined): void {
    if (typeof seq !== 'number' || !Number.isFinite(seq)) return;
    seqLog.push(seq);
    if (seqLog.length > maxSeqLog * 1.25) seqLog = seqLog.slice(seqLog.length - maxSeqLog);
  }

  return {
    /** Apply one parsed sample ({t, seq, values}). */
    appendSample(sample) {
      const { t, seq, values } = sample;
      for (const [name, y] of Object.entries(values)) {
        insertPoint(arrayFor(name), seq === undefined ? { x: t, y } : { x: t, y, s: seq });
        const prev = latest.get(name);
        if (!prev || prev.t <= t) latest.set(name, { value: y, t, seq });
      }
      if (t > newestT) newestT = t;
      noteSeq(seq);
    },

    /** Record the seq of a non-metrics stream message (notification, ack). */
    noteSeq,

    /**
     * Merge `history` buckets ({name: [{x, y}]}) into the buffers, only where
     * no live point already covers the bucket: fills the left edge of a longer
     * window, a `resume_gap`, or a span the throttled hidden tab skipped.
     */
    mergeHistory(historySeries, { bucketMs = 0 } = {}) {
      const cover = Math.max(1, bucketMs);
      if (Object.values(historySeries).some((pts) => pts.length)) historyBucketMs = Math.max(historyBucketMs, bucketMs || 0);
      for (const [name, points] of Object.entries(historySeries)) {
        if (!points.length) continue;
        const arr = arrayFor(name);
        const merged: StoredPoint[] = [];
        let i = 0;
        for (const p of points) {
          while (i < arr.length && arr[i].x < p.x) merged.push(arr[i++]);
          // Skip the bucket if a point already lies inside [p.x, p.x + bucket).
          if (i < arr.length && arr[i].x < p.x + cover) continue;
          merged.push({ x: p.x, y: p.y });
        }
        while (i < arr.length) merged.push(arr[i++]);
        series.set(name, merged);
        const last = merged[merged.length - 1];
        const prev = latest.get(name);
        if (last && (!prev || prev.t < last.x)) latest.set(name, { value: last.y, t: last.x, seq: undefined });
        if (last && last.x > newestT) newestT = last.x;
      }
    },

    /** Drop points older than retention (relative to the newest sample) and over the cap. */
    trim(now = newestT) {
      const cutoff = now - retentionMs;
      for (const [name, arr] of series) {
        if (arr.length && arr[0].x < cutoff - trimSlackMs) {
          arr.splice(0, lowerBound(arr, cutoff));
        }
        if (arr.length > maxPoints) arr.splice(0, arr.length - maxPoints);
        if (!arr.length) series.delete(name);
      }
    },

    /** The live array for a metric (read-only for callers; may be replaced on merge). */
    get(name) {
      return series.get(name) || [];
    },
    names() {
      return [...series.keys()];
    },
    latest(name) {
      return latest.get(name);
    },
    /** Newest sample time seen (server clock), or -Infinity. */
    newestTime() {
      return newestT;
    },
    /** Oldest point across the given metrics, or +Infinity. */
    oldestTime(names) {
      let t = Infinity;
      for (const n of names) {
        const arr = series.get(n);
        if (arr && arr.length && arr[0].x < t) t = arr[0].x;
      }
      return t;
    },
    /** Seqs of the live samples in the chart data, ascending and unique. */
    sampleSeqs() {
      const seen = new Set<number>();
      for (const arr of series.values()) for (const p of arr) if (p.s !== undefined) seen.add(p.s);
      return [...seen].sort((a, b) => a - b);
    },
    /** Seqs of every stream message applied (metrics, notifications, acks). */
    streamSeqs() {
      return seqLog.slice(-maxSeqLog);
    },
    pointCount() {
      let n = 0;
      for (const arr of series.values()) n += arr.length;
      return n;
    },
    /** The widest history bucket merged into the held data (its spacing is no gap). */
    bucketMs() {
      return historyBucketMs;
    },
    clear() {
      historyBucketMs = 0;
      series.clear();
      latest.clear();
      seqLog = [];
      newestT = -Infinity;
      this.notify();
    },

    get version() {
      return version;
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    /** Bump the version and tell charts/tiles to redraw (called once per flush). */
    notify() {
      version += 1;
      for (const fn of listeners) fn(version);
    },
  };
}
