// Parsing frames, samples and history replies (protocol/parse.ts).
import { describe, expect, it } from 'vitest';
import { historyToSeries, isStreamMessage, parseMessage, toEpochMs, toSample } from './parse';

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
