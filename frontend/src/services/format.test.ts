import { describe, expect, it } from 'vitest';
import { axisTitle, formatAgo, formatAxisTick, formatBytes, formatBytesPerSecond, formatCount, formatDuration, formatMetric, formatMetricParts, formatPercent, levelFor } from './format';

describe('formatting', () => {
  it('formats bytes with binary prefixes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(10 * 1024 * 1024)).toBe('10.0 MiB');
    expect(formatBytes(200 * 1024 ** 3)).toBe('200 GiB');
    expect(formatBytes(NaN)).toBe('—');
  });

  it('formats rates as KiB/s and MiB/s', () => {
    expect(formatBytesPerSecond(1250)).toBe('1.22 KiB/s');
    expect(formatBytesPerSecond(5.5 * 1024 * 1024)).toBe('5.50 MiB/s');
    expect(formatBytesPerSecond(12)).toBe('12 B/s');
  });

  it('formats percentages, counts and durations', () => {
    expect(formatPercent(45.234)).toBe('45.2 %');
    expect(formatCount(12345.4)).toBe('12,345');
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(7 * 60 + 3)).toBe('7m 03s');
    expect(formatDuration(5 * 3600 + 12 * 60)).toBe('5h 12m');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3d 4h');
    expect(formatDuration(-1)).toBe('—');
  });

  it('formats metric values by catalogue unit, split for tiles', () => {
    expect(formatMetricParts(45.2, '%')).toEqual({ value: '45.2', unit: '%' });
    expect(formatMetricParts(2 * 1024 * 1024, 'B/s')).toEqual({ value: '2.00', unit: 'MiB/s' });
    expect(formatMetricParts(90061, 's')).toEqual({ value: '1d 1h', unit: '' });
    expect(formatMetricParts(24, 'count')).toEqual({ value: '24', unit: '' });
    expect(formatMetricParts(0.52, '')).toEqual({ value: '0.52', unit: '' });
    expect(formatMetricParts(undefined, '%')).toEqual({ value: '—', unit: '%' });
    expect(formatMetric(1536, 'B/s')).toBe('1.50 KiB/s');
    expect(formatMetric(3, 'count')).toBe('3');
  });

  it('formats compact axis ticks and titles with units', () => {
    expect(formatAxisTick(50, '%')).toBe('50 %');
    expect(formatAxisTick(3 * 1024 * 1024, 'B/s')).toBe('3.0 MiB/s');
    expect(formatAxisTick(512, 'B/s')).toBe('512 B/s');
    expect(formatAxisTick(1500, 'count')).toBe('1.5k');
    expect(axisTitle('B/s')).toMatch(/bytes\/s/);
    expect(axisTitle('%')).toMatch(/%/);
  });

  it('formats relative times', () => {
    expect(formatAgo(1000, 6000)).toBe('5 s ago');
    expect(formatAgo(0, 3 * 60_000)).toBe('3 min ago');
    expect(formatAgo(0, 5 * 3_600_000)).toBe('5 h ago');
  });
});

describe('levelFor', () => {
  it('colours by threshold', () => {
    expect(levelFor('cpu_usage', 50)).toBe('ok');
    expect(levelFor('cpu_usage', 75)).toBe('warn');
    expect(levelFor('cpu_usage', 95)).toBe('crit');
    expect(levelFor('network_rx', 1e12)).toBe('ok');
  });
  it('scales the load threshold by core count', () => {
    expect(levelFor('load_1', 3, { cores: 4 })).toBe('ok');
    expect(levelFor('load_1', 5, { cores: 4 })).toBe('warn');
    expect(levelFor('load_1', 9, { cores: 4 })).toBe('crit');
  });
});
