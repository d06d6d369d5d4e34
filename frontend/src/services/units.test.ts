import { describe, expect, it } from 'vitest';
import { formatRate, formatRateTick, rateTicks, sparkRange, trendTone } from './units';

const MiB = 1024 * 1024;

describe('numbers that read right', () => {
  it('byte-rate axes tick at round values in one binary unit', () => {
    const axis = rateTicks(381 * MiB, 'B/s');
    expect(axis.unit).toBe('MiB/s');
    const labels = axis.ticks.map((t) => formatRateTick(t, axis));
    expect(labels).toEqual(['0 MiB/s', '100 MiB/s', '200 MiB/s', '300 MiB/s', '400 MiB/s']);
    expect(labels.some((l) => /95\.4|191|286|381/.test(l))).toBe(false);
  });

  it('small rates stay in one unit too (no "1000 B/s" next to KiB/s)', () => {
    const axis = rateTicks(2500, 'B/s');
    expect(new Set(axis.ticks.slice(1).map((t) => formatRateTick(t, axis).split(' ')[1]))).toEqual(new Set(['KiB/s']));
    expect(formatRate(1000, 'B/s')).toBe('0.98 KiB/s');
    expect(formatRate(512, 'B/s')).toBe('512 B/s');
  });

  it('offers bits/s in decimal units for the network', () => {
    expect(formatRate(1_000_000 / 8, 'bit/s')).toBe('1.00 Mbit/s');
    const axis = rateTicks(8 * 12_000_000, 'bit/s');
    expect(axis.unit).toBe('Mbit/s');
    expect(formatRateTick(axis.ticks[1], axis)).toMatch(/^\d+ Mbit\/s$/);
  });

  it('percentage sparklines span at least 10 points, so 24.1 → 24.0 % is flat', () => {
    expect(sparkRange(24.0, 24.1, '%')).toEqual({ lo: 19.05, hi: 29.05 });
    expect(sparkRange(0, 0.5, '%')).toEqual({ lo: 0, hi: 10 });
    expect(sparkRange(99.5, 100, '%')).toEqual({ lo: 90, hi: 100 });
    expect(sparkRange(10, 60, '%')).toEqual({ lo: 10, hi: 60 });
  });

  it('colours trend arrows only where a threshold says it is bad', () => {
    expect(trendTone('up', 'ok', true)).toBe('neutral');
    expect(trendTone('up', 'ok', false)).toBe('neutral');
    expect(trendTone('up', 'warn', true)).toBe('bad');
    expect(trendTone('down', 'crit', true)).toBe('good');
  });
});
