import { describe, expect, it } from 'vitest';
import { historyToSeries, isStreamMessage, parseMessage, toEpochMs, toSample } from '../protocol/parse';
import { RECONNECT_MAX_MS, backoffDelay } from './backoff';
import { expandMetrics } from './chartGroups';
import { groupOfMetric, subscriptionFor } from './constants';
import { axisTitle, formatAgo, formatAxisTick, formatBytes, formatBytesPerSecond, formatCount, formatDuration, formatMetric, formatMetricParts, formatPercent, levelFor } from './format';
import { decodeJwt } from './jwt';
import { roleAtLeast } from './roles';

describe('parseMessage', () => {
  it('accepts an envelope and defaults a missing data to {}', () => {
    expect(parseMessage('{"type":"pong","correlation_id":"p1"}')).toEqual({ type: 'pong', correlation_id: 'p1', data: {} });
  });

  it('keeps unknown fields (forward compatibility)', () => {
    const msg = parseMessage('{"type":"metrics_update","seq":3,"data":{"x":1},"future":true}') as Record<string, unknown> | null;
    expect(msg?.future).toBe(true);
    expect(msg?.seq).toBe(3);
  });

  it.each([
    ['not json', 'garbage'],
    ['an array', '[1,2]'],
    ['null', 'null'],
    ['a missing type', '{"data":{}}'],
    ['a non-string type', '{"type":5}'],
    ['a non-numeric seq', '{"type":"metrics_update","seq":"7"}'],
  ])('rejects %s', (_, text) => {
    expect(parseMessage(text)).toBeNull();
  });

  it('tells stream messages by type and seq', () => {
    expect(isStreamMessage({ type: 'metrics_update', seq: 1 })).toBe(true);
    expect(isStreamMessage({ type: 'notification_ack', seq: 9 })).toBe(true);
    expect(isStreamMessage({ type: 'metrics_update' })).toBe(false);
    expect(isStreamMessage({ type: 'pong', seq: 1 })).toBe(false);
  });
});

describe('toSample', () => {
  it('flattens a metrics_update and drops non-numeric values', () => {
    const s = toSample({
      type: 'metrics_update',
      seq: 1042,
      data: {
        timestamp: '2026-11-26T10:00:01.000Z',
        host: 'web-1',
        recovered: true,
        metrics: { cpu_usage: 45.2, network_rx: 1250, bogus: 'x', nan: null },
      },
    });
    expect(s).toEqual({
      t: Date.UTC(2026, 10, 26, 10, 0, 1),
      seq: 1042,
      host: 'web-1',
      values: { cpu_usage: 45.2, network_rx: 1250 },
      recovered: true,
    });
  });

  it('returns null without a usable timestamp', () => {
    expect(toSample({ type: 'metrics_update', seq: 1, data: { metrics: {} } })).toBeNull();
  });

  it('reads ISO strings, Unix seconds and Unix milliseconds', () => {
    expect(toEpochMs('2026-11-26T10:00:00.000Z')).toBe(Date.UTC(2026, 10, 26, 10));
    expect(toEpochMs(1_764_151_200)).toBe(1_764_151_200_000);
    expect(toEpochMs(1_764_151_200_000)).toBe(1_764_151_200_000);
    expect(toEpochMs(undefined)).toBeNaN();
  });
});

describe('historyToSeries', () => {
  it('maps buckets to sorted {x, y} points using the average', () => {
    const out = historyToSeries({
      bucket_ms: 12000,
      series: {
        cpu_usage: [
          { t: 2000, avg: 20, min: 1, max: 30, count: 2 },
          { t: 1000, avg: 10, min: 1, max: 30, count: 2 },
          { t: 3000, avg: null as unknown as number },
        ],
      },
    });
    expect(out).toEqual({ bucketMs: 12000, series: { cpu_usage: [{ x: 1000, y: 10 }, { x: 2000, y: 20 }] } });
  });

  it('copes with an empty reply', () => {
    expect(historyToSeries(undefined)).toEqual({ series: {}, bucketMs: 0 });
  });
});

describe('metric names', () => {
  it('expands the per-core pattern in natural order', () => {
    const names = ['cpu_usage', 'cpu_core_10', 'cpu_core_2', 'cpu_core_0', 'memory_usage'];
    expect(expandMetrics(['cpu_usage', 'cpu_core_*'], names)).toEqual(['cpu_usage', 'cpu_core_0', 'cpu_core_2', 'cpu_core_10']);
  });

  it('maps selected groups to subscription globs and names back to groups', () => {
    expect(subscriptionFor(['memory', 'network'])).toEqual(['memory_usage', 'swap_usage', 'network_*']);
    expect(groupOfMetric('cpu_core_3')).toBe('cpu');
    expect(groupOfMetric('load_15')).toBe('cpu');
    expect(groupOfMetric('active_connections')).toBe('system');
    expect(groupOfMetric('nope')).toBeNull();
  });
});

describe('decodeJwt', () => {
  const b64url = (o: unknown) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  it('reads the payload of a token', () => {
    const token = `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'alice', role: 'admin', exp: 2_000_000_000 })}.sig`;
    expect(decodeJwt(token)).toEqual({ sub: 'alice', role: 'admin', exp: 2_000_000_000 });
  });
  it('returns null for anything else', () => {
    expect(decodeJwt('abc')).toBeNull();
    expect(decodeJwt('a.b.c')).toBeNull();
    expect(decodeJwt(null)).toBeNull();
  });
});

describe('backoffDelay', () => {
  it('doubles per attempt with equal jitter', () => {
    expect(backoffDelay(1, { random: () => 0 })).toBe(250);
    expect(backoffDelay(1, { random: () => 1 })).toBe(500);
    expect(backoffDelay(2, { random: () => 0 })).toBe(500);
    expect(backoffDelay(4, { random: () => 1 })).toBe(4000);
  });
  it('is capped', () => {
    expect(backoffDelay(50, { random: () => 1 })).toBe(RECONNECT_MAX_MS);
    expect(backoffDelay(50, { random: () => 0 })).toBe(RECONNECT_MAX_MS / 2);
  });
});

describe('roles', () => {
  it('orders viewer < operator < admin', () => {
    expect(roleAtLeast('operator', 'operator')).toBe(true);
    expect(roleAtLeast('admin', 'operator')).toBe(true);
    expect(roleAtLeast('viewer', 'operator')).toBe(false);
    expect(roleAtLeast(undefined, 'viewer')).toBe(false);
  });
});

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
