// Gaps and outages: where samples are missing, the charts must show a break
// rather than a straight line across the hole (issue 16 item 1).
//
// The expected spacing of samples comes from the stream: the collection
// interval in connection_ack, slowed by a throttled rate, widened by history
// buckets. A hole wider than GAP_INTERVALS steps is a gap. Chart.js breaks a
// line at a point whose y is null (spanGaps false), so a gap gets one such
// marker in its middle; min-max decimation keeps it, since a marker in a
// pixel column of its own is always emitted.

import { SECOND_MS } from './constants';

/** A chart point; y null is a break marker (`gap: true` when we made it). */
export interface GapPoint {
  x: number;
  y: number | null;
  gap?: boolean;
}

/** What extendBreaks remembers between redraws of one dataset. */
export interface BreaksCache {
  src?: readonly GapPoint[];
  len?: number;
  firstX?: number;
  maxGap?: number;
  factor?: number;
  out?: GapPoint[];
}

export interface Span {
  from: number;
  to: number;
}

export interface OutageLog {
  open(t: number): void;
  close(t: number, minMs?: number): void;
  isOpen(): boolean;
  openSince(): number | null;
  add(from: number, to: number): void;
  spans(): Span[];
  trim(before: number): void;
  clear(): void;
}

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/** Samples missing for more than this many expected steps make a break. */
export const GAP_INTERVALS = 2.5;
/** Never call a hole under this a gap (timer jitter at very fast intervals). */
export const MIN_GAP_MS = 1 * SECOND_MS;

/** The widest hole that still counts as continuous data, for a step in ms. */
export function maxGapFor(stepMs: number | null | undefined): number {
  const step = finite(stepMs) && stepMs > 0 ? stepMs : SECOND_MS;
  return Math.max(MIN_GAP_MS, GAP_INTERVALS * step);
}

/** Expected sample spacing: collection interval, slowed by a throttled rate. */
export function expectedStepMs({ intervalS, rateHz, bucketMs = 0 }: { intervalS?: number | null; rateHz?: number | null; bucketMs?: number } = {}): number {
  const interval = finite(intervalS) && intervalS > 0 ? intervalS * SECOND_MS : SECOND_MS;
  const throttled = finite(rateHz) && rateHz > 0 ? SECOND_MS / rateHz : 0;
  return Math.max(interval, throttled, bucketMs || 0);
}

/**
 * A copy of `points` ({x, y} sorted by x) with a `{x, y: null, gap: true}`
 * marker in the middle of every hole wider than `maxGapMs`. Always a new
 * array, so a chart never shares (and Chart.js never patches) the store's.
 */
export function withBreaks(points: readonly GapPoint[], maxGapMs: number): GapPoint[] {
  const out: GapPoint[] = [];
  let prev: GapPoint | null = null;
  for (const p of points) {
    if (p.y === null) continue;
    if (prev && p.x - prev.x > maxGapMs) out.push({ x: (prev.x + p.x) / 2, y: null, gap: true });
    out.push(p);
    prev = p;
  }
  return out;
}

/**
 * withBreaks for a series that mostly grows at its end: `cache` ({src, len,
 * firstX, maxGap, factor, out}) remembers the last result, and when the same
 * store array only gained points, just those are appended to the chart's own
 * array (no 25 000-point copy per redraw of a 1 h window). Anything else (a
 * trim, a history merge, another threshold or unit) rebuilds it. Returns the
 * chart's array; y values are multiplied by `factor` (bits/s).
 */
export function extendBreaks(cache: BreaksCache, src: readonly GapPoint[], maxGapMs: number, factor = 1): GapPoint[] {
  const scale = (p: GapPoint): GapPoint => (factor === 1 || p.y === null ? p : { x: p.x, y: p.y * factor });
  const reusable = cache.out && cache.src === src && cache.len !== undefined && src.length >= cache.len && cache.maxGap === maxGapMs
    && cache.factor === factor && (src.length === 0 ? cache.len === 0 : src[0].x === cache.firstX);
  if (!reusable) {
    const out = withBreaks(src, maxGapMs);
    Object.assign(cache, { src, len: src.length, firstX: src[0]?.x, maxGap: maxGapMs, factor, out: factor === 1 ? out : out.map(scale) });
    return cache.out as GapPoint[];
  }
  const out = cache.out as GapPoint[];
  const len = cache.len ?? 0;
  let prev: GapPoint | null = null;
  for (let i = len - 1; i >= 0; i -= 1) {
    if (src[i].y !== null) {
      prev = src[i];
      break;
    }
  }
  for (let i = len; i < src.length; i += 1) {
    const p = src[i];
    if (p.y === null) continue;
    if (prev && p.x - prev.x > maxGapMs) out.push({ x: (prev.x + p.x) / 2, y: null, gap: true });
    out.push(scale(p));
    prev = p;
  }
  cache.len = src.length;
  return out;
}

/** The holes wider than `maxGapMs` as [{from, to}] (edges are the samples around them). */
export function findGaps(points: readonly GapPoint[], maxGapMs: number): Span[] {
  const gaps: Span[] = [];
  for (let i = 1; i < points.length; i += 1) {
    if (points[i].x - points[i - 1].x > maxGapMs) gaps.push({ from: points[i - 1].x, to: points[i].x });
  }
  return gaps;
}

/**
 * Known outages (the daemon down or the page disconnected): a bounded list
 * of spans in server time. `open(t)` starts one at the newest sample held
 * when the connection dropped; `close(t)` ends it at the first sample after
 * the reconnect; `add` records a span a `resume_gap` reported.
 */
export function createOutageLog({ max = 50 }: { max?: number } = {}): OutageLog {
  let spans: Span[] = [];
  let pending: number | null = null;
  const push = (span: Span) => {
    if (!(Number.isFinite(span.from) && Number.isFinite(span.to) && span.to > span.from)) return;
    spans = [...spans.filter((s) => s.to < span.from || s.from > span.to), span].sort((a, b) => a.from - b.from).slice(-max);
  };
  return {
    open(t: number) {
      if (pending === null && Number.isFinite(t)) pending = t;
    },
    /**
     * The first sample time after a reconnect ends the open outage; a span no
     * wider than `minMs` (the page was away, the daemon was not) is dropped.
     */
    close(t: number, minMs = 0) {
      if (pending === null) return;
      const from = pending;
      pending = null;
      if (t - from > minMs) push({ from, to: t });
    },
    isOpen: () => pending !== null,
    openSince: () => pending,
    add(from: number, to: number) {
      push({ from, to });
    },
    spans: () => spans,
    trim(before: number) {
      spans = spans.filter((s) => s.to >= before);
    },
    clear() {
      spans = [];
      pending = null;
    },
  };
}

/** Median spacing of the newest `n` points: the step the data really has. */
export function observedStepMs(points: readonly GapPoint[], n = 21): number {
  const start = Math.max(1, points.length - n);
  const deltas: number[] = [];
  for (let i = start; i < points.length; i += 1) deltas.push(points[i].x - points[i - 1].x);
  if (!deltas.length) return 0;
  deltas.sort((a, b) => a - b);
  return deltas[deltas.length >> 1];
}

/** min / avg / max of the non-null y values with x in [from, to]. */
export function rangeStats(points: readonly GapPoint[], from: number, to: number): { min: number; avg: number; max: number; count: number } | null {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let n = 0;
  for (const p of points) {
    if (p.x < from || p.x > to || !finite(p.y)) continue;
    if (p.y < min) min = p.y;
    if (p.y > max) max = p.y;
    sum += p.y;
    n += 1;
  }
  return n ? { min, avg: sum / n, max, count: n } : null;
}
