import { describe, expect, it } from 'vitest';
import { createOutageLog, expectedStepMs, extendBreaks, findGaps, maxGapFor, rangeStats, withBreaks } from './gaps';

const pts = (...xs: number[]) => xs.map((x) => ({ x, y: x / 1000 }));

describe('gaps', () => {
  it('breaks the line where samples are missing for more than about two intervals', () => {
    // 0.5 s interval; the daemon was down from 2 s to 23 s.
    const gap = maxGapFor(expectedStepMs({ intervalS: 0.5 }));
    const out = withBreaks(pts(0, 500, 1000, 1500, 2000, 23000, 23500), gap);
    const nulls = out.filter((p) => p.y === null);
    expect(nulls).toEqual([{ x: 12500, y: null, gap: true }]);
    expect(out).toHaveLength(8);
    expect(findGaps(pts(0, 500, 1000, 1500, 2000, 23000, 23500), gap)).toEqual([{ from: 2000, to: 23000 }]);
  });

  it('does not break the line for ordinary jitter or one missed sample', () => {
    const gap = maxGapFor(expectedStepMs({ intervalS: 0.5 }));
    expect(withBreaks(pts(0, 500, 1000, 2000, 2600), gap).some((p) => p.y === null)).toBe(false);
  });

  it('a throttled rate or history buckets widen the expected step', () => {
    expect(expectedStepMs({ intervalS: 0.5, rateHz: 0.2 })).toBe(5000);
    expect(expectedStepMs({ intervalS: 0.5, bucketMs: 60_000 })).toBe(60_000);
    const gap = maxGapFor(expectedStepMs({ intervalS: 0.5, rateHz: 0.2 }));
    expect(withBreaks(pts(0, 5000, 10000), gap).some((p) => p.y === null)).toBe(false);
  });

  it('always returns a new array so a paused chart keeps its own frozen copy', () => {
    const src = pts(0, 500);
    const out = withBreaks(src, 2000);
    expect(out).not.toBe(src);
    src.push({ x: 1000, y: 1 });
    expect(out).toHaveLength(2);
  });

  it('records outages from a dropped connection and from resume_gap', () => {
    const log = createOutageLog();
    log.open(1000);
    log.open(2000); // still the same outage
    expect(log.isOpen()).toBe(true);
    log.close(21000);
    log.add(30000, 31000);
    log.add(0, -5); // nonsense is ignored
    expect(log.spans()).toEqual([{ from: 1000, to: 21000 }, { from: 30000, to: 31000 }]);
    log.trim(25000);
    expect(log.spans()).toEqual([{ from: 30000, to: 31000 }]);
  });

  it('min/avg/max cover only the visible range and skip breaks', () => {
    const points = [{ x: 0, y: 10 }, { x: 1, y: null }, { x: 2, y: 20 }, { x: 3, y: 90 }];
    expect(rangeStats(points, 0, 2)).toEqual({ min: 10, avg: 15, max: 20, count: 2 });
    expect(rangeStats(points, 5, 9)).toBeNull();
  });
});

describe('extendBreaks', () => {
  it('appends only new points to the chart array while the store array grows, and rebuilds otherwise', () => {
    const cache = {};
    const src = pts(0, 500, 1000);
    const first = extendBreaks(cache, src, 2000);
    expect(first).not.toBe(src);
    src.push({ x: 1500, y: 1.5 }, { x: 9000, y: 9 });
    const grown = extendBreaks(cache, src, 2000);
    expect(grown).toBe(first);
    expect(grown.map((p) => p.y)).toEqual([0, 0.5, 1, 1.5, null, 9]);
    expect(grown).toEqual(withBreaks(src, 2000));
    src.splice(0, 2); // trimmed at the front: rebuilt
    const trimmed = extendBreaks(cache, src, 2000);
    expect(trimmed).not.toBe(first);
    expect(trimmed).toEqual(withBreaks(src, 2000));
    expect(extendBreaks(cache, src, 2000, 8).map((p) => p.y)).toEqual([8, 12, null, 72]);
  });
});
