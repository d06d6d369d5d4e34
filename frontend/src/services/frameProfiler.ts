// Time spent per drawn animation frame, from the Performance API.
//
// The dashboard's flush (store update + in-place chart updates + the tile
// re-render it triggers) is timed with performance.now() on every frame that
// has data. Durations go into a fixed ring, so a wall display open for days
// holds a constant few KiB. With `setMeasuring(true)` each frame is also
// recorded as a `performance.measure('dashd:frame')` entry for DevTools and the
// end-to-end frame-budget test (which clears them when done).

export const FRAME_MEASURE_NAME = 'dashd:frame';
export const FRAME_RING_SIZE = 1200;

/** Nearest-rank percentile of an array of numbers (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface FrameStats {
  frames: number;
  p50: number;
  p95: number;
  max: number;
}

export interface FrameProfiler {
  now(): number;
  record(start: number, end: number): void;
  setMeasuring(on: boolean): void;
  samples(): number[];
  stats(): FrameStats;
  reset(): void;
}

export interface FrameProfilerOptions {
  size?: number;
  perf?: Pick<Performance, 'now'> & Partial<Pick<Performance, 'measure'>>;
}

export function createFrameProfiler({ size = FRAME_RING_SIZE, perf = globalThis.performance }: FrameProfilerOptions = {}): FrameProfiler {
  const ring = new Float64Array(size);
  let count = 0;
  let measuring = false;

  return {
    now() {
      return perf.now();
    },
    record(start: number, end: number) {
      ring[count % size] = end - start;
      count += 1;
      if (measuring && typeof perf.measure === 'function') {
        try {
          perf.measure(FRAME_MEASURE_NAME, { start, end });
        } catch {
          // Older engines without the options form of measure(); the ring still has it.
        }
      }
    },
    setMeasuring(on: boolean) {
      measuring = Boolean(on);
    },
    samples() {
      const n = Math.min(count, size);
      const out: number[] = new Array(n);
      for (let i = 0; i < n; i += 1) out[i] = ring[(count - n + i) % size];
      return out;
    },
    stats() {
      const s = this.samples();
      return { frames: count, p50: percentile(s, 50), p95: percentile(s, 95), max: s.length ? Math.max(...s) : NaN };
    },
    reset() {
      count = 0;
    },
  };
}
