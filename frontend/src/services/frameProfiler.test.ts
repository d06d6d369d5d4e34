import { describe, expect, it, vi } from 'vitest';
import { FRAME_MEASURE_NAME, createFrameProfiler, percentile } from './frameProfiler';

describe('percentile', () => {
  it('uses the nearest rank', () => {
    const v = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 95)).toBe(10);
    expect(percentile(v, 0)).toBe(1);
    expect(percentile([], 50)).toBeNaN();
  });
});

describe('frame profiler', () => {
  it('keeps a fixed ring of the latest frame durations', () => {
    const p = createFrameProfiler({ size: 4, perf: { now: () => 0 } });
    for (let i = 1; i <= 10; i += 1) p.record(0, i);
    expect(p.samples()).toEqual([7, 8, 9, 10]);
    expect(p.stats()).toMatchObject({ frames: 10, p50: 8, p95: 10, max: 10 });
  });

  it('records Performance API measures only while measuring', () => {
    const measure = vi.fn();
    const p = createFrameProfiler({ perf: { now: () => 0, measure } });
    p.record(1, 2);
    expect(measure).not.toHaveBeenCalled();
    p.setMeasuring(true);
    p.record(3, 5);
    expect(measure).toHaveBeenCalledWith(FRAME_MEASURE_NAME, { start: 3, end: 5 });
  });
});
