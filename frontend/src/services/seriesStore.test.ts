import { describe, expect, it, vi } from 'vitest';
import { createSeriesStore } from './seriesStore';

const MIN = 60_000;

function sample(seq: number, t: number, values: Record<string, number>) {
  return { seq, t, values };
}

describe('series store', () => {
  it('appends samples per metric and tracks the latest value', () => {
    const store = createSeriesStore();
    store.appendSample(sample(1, 1000, { cpu_usage: 10, memory_usage: 50 }));
    store.appendSample(sample(2, 2000, { cpu_usage: 20 }));
    expect(store.get('cpu_usage')).toEqual([{ x: 1000, y: 10, s: 1 }, { x: 2000, y: 20, s: 2 }]);
    expect(store.latest('cpu_usage')).toEqual({ value: 20, t: 2000, seq: 2 });
    expect(store.latest('memory_usage')?.value).toBe(50);
    expect(store.newestTime()).toBe(2000);
    expect(store.get('nothing')).toEqual([]);
  });

  it('inserts an out-of-order sample in time order', () => {
    const store = createSeriesStore();
    store.appendSample(sample(1, 1000, { a: 1 }));
    store.appendSample(sample(3, 3000, { a: 3 }));
    store.appendSample(sample(2, 2000, { a: 2 }));
    expect(store.get('a').map((p) => p.x)).toEqual([1000, 2000, 3000]);
    expect(store.latest('a')?.value).toBe(3);
  });

  it('is bounded by time: points past retention are dropped', () => {
    const store = createSeriesStore({ retentionMs: 10 * MIN, trimSlackMs: MIN });
    for (let i = 0; i <= 30; i += 1) store.appendSample(sample(i, i * MIN, { a: i }));
    store.trim();
    const xs = store.get('a').map((p) => p.x);
    expect(xs[0]).toBeGreaterThanOrEqual(20 * MIN - MIN);
    expect(xs[xs.length - 1]).toBe(30 * MIN);
  });

  it('is bounded by count', () => {
    const store = createSeriesStore({ maxPoints: 100 });
    for (let i = 0; i < 1000; i += 1) store.appendSample(sample(i, i, { a: i }));
    store.trim();
    expect(store.get('a')).toHaveLength(100);
    expect(store.get('a')[0].y).toBe(900);
  });

  it('keeps the seq log bounded too', () => {
    const store = createSeriesStore({ maxSeqLog: 50 });
    for (let i = 0; i < 500; i += 1) store.noteSeq(i);
    expect(store.streamSeqs()).toHaveLength(50);
    expect(store.streamSeqs()[49]).toBe(499);
  });

  it('merges history only where no live point covers the bucket', () => {
    const store = createSeriesStore();
    // Live points at 10 s and 11 s; a gap between 2 s and 9 s.
    store.appendSample(sample(1, 1000, { a: 1 }));
    store.appendSample(sample(5, 10_000, { a: 10 }));
    store.appendSample(sample(6, 11_000, { a: 11 }));
    store.mergeHistory(
      { a: [0, 2000, 4000, 6000, 8000, 10_000].map((x) => ({ x, y: -x })) },
      { bucketMs: 2000 },
    );
    const pts = store.get('a');
    // Bucket [0, 2000) holds the live point at 1000 -> skipped; [10000, 12000) too.
    expect(pts.map((p) => p.x)).toEqual([1000, 2000, 4000, 6000, 8000, 10_000, 11_000]);
    expect(pts.filter((p) => p.s !== undefined).map((p) => p.s)).toEqual([1, 5, 6]);
    expect(store.sampleSeqs()).toEqual([1, 5, 6]);
  });

  it('fills the left edge of a longer window from history', () => {
    const store = createSeriesStore();
    store.appendSample(sample(100, 60_000, { a: 1 }));
    store.mergeHistory({ a: [{ x: 0, y: 5 }, { x: 30_000, y: 6 }], b: [{ x: 0, y: 1 }] }, { bucketMs: 30_000 });
    expect(store.get('a').map((p) => p.x)).toEqual([0, 30_000, 60_000]);
    expect(store.oldestTime(['a', 'b'])).toBe(0);
    expect(store.latest('a')?.value).toBe(1); // history never overrides a newer live value
    expect(store.latest('b')?.value).toBe(1);
  });

  it('notifies subscribers with a new version and stops after unsubscribe', () => {
    const store = createSeriesStore();
    const fn = vi.fn();
    const off = store.subscribe(fn);
    store.notify();
    expect(fn).toHaveBeenCalledWith(1);
    off();
    store.notify();
    expect(fn).toHaveBeenCalledTimes(1);
    expect(store.version).toBe(2);
  });

  it('stays flat in memory over a simulated day at 2 Hz', () => {
    const store = createSeriesStore();
    const stepMs = 500;
    const day = 24 * 60 * MIN;
    let seq = 0;
    for (let t = 0; t < day; t += stepMs) {
      store.appendSample(sample(seq++, t, { cpu_usage: 1, network_rx: 2 }));
      if (seq % 120 === 0) store.trim();
    }
    store.trim();
    // 1 h + 2 min retention (+30 s slack) at 2 Hz, per series.
    expect(store.get('cpu_usage').length).toBeLessThanOrEqual(((62 * MIN + 30_000) / stepMs) + 1);
    expect(store.streamSeqs().length).toBeLessThanOrEqual(20_000);
  });
});
