// Range arithmetic, the address contract (docs/dashboard-urls.md) and the
// point count a chart asks `history` for.
import { describe, expect, it } from 'vitest';
import {
  MIN_CHART_POINTS,
  MIN_SPAN_MS,
  YEAR_MS,
  fromLocalInput,
  liveRange,
  panRange,
  parseDurationMs,
  parseTimeParam,
  pointCountFor,
  readViewUrl,
  resolveRange,
  spanLabel,
  toLocalInput,
  writeViewUrl,
  zoomOut,
  zoomTo,
} from './timeRange';
import { DAY_MS, HOUR_MS, MINUTE_MS } from './constants';

const NOW = Date.parse('2026-12-07T12:00:00Z');

describe('durations and times', () => {
  it('reads every picker range and any <number><unit>', () => {
    expect(['5m', '15m', '1h', '6h', '24h', '7d', '30d', '90d', '1y'].map(parseDurationMs)).toEqual([
      5 * MINUTE_MS, 15 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 90 * DAY_MS, YEAR_MS,
    ]);
    expect(parseDurationMs('90s')).toBe(90_000);
    expect(parseDurationMs('2y')).toBe(2 * YEAR_MS);
    expect(parseDurationMs('soon')).toBeNaN();
    expect(liveRange('24h')).toEqual({ kind: 'live', id: '24h', spanMs: DAY_MS });
    expect(liveRange('2h')).toEqual({ kind: 'live', id: '2h', spanMs: 2 * HOUR_MS });
    expect(liveRange('-1h')).toBeNull();
  });

  it('reads digits as Unix ms and ISO without a zone as UTC', () => {
    expect(parseTimeParam('1796601600000')).toBe(1796601600000);
    expect(parseTimeParam('2026-12-07T01:00:00Z')).toBe(Date.parse('2026-12-07T01:00:00Z'));
    expect(parseTimeParam('2026-12-07T01:00:00')).toBe(Date.parse('2026-12-07T01:00:00Z'));
    expect(parseTimeParam('2026-12-07T02:00:00+01:00')).toBe(Date.parse('2026-12-07T01:00:00Z'));
    expect(parseTimeParam('yesterday')).toBeNaN();
    expect(parseTimeParam('')).toBeNaN();
  });

  it('round-trips the datetime-local value in local time', () => {
    const t = new Date(2026, 11, 7, 9, 30).getTime();
    expect(toLocalInput(t)).toBe('2026-12-07T09:30');
    expect(fromLocalInput('2026-12-07T09:30')).toBe(t);
    expect(fromLocalInput('')).toBeNaN();
  });

  it('labels spans the way the picker does', () => {
    expect([15 * MINUTE_MS, HOUR_MS, DAY_MS, 30 * DAY_MS, YEAR_MS].map(spanLabel)).toEqual(['15 min', '1 h', '1 d', '30 d', '1 y']);
  });
});

describe('range arithmetic', () => {
  it('resolves a live range against now and an absolute one as is', () => {
    expect(resolveRange({ kind: 'live', id: '1h', spanMs: HOUR_MS }, NOW)).toEqual({ from: NOW - HOUR_MS, to: NOW });
    expect(resolveRange({ kind: 'absolute', from: 1, to: 2 }, NOW)).toEqual({ from: 1, to: 2 });
  });

  it('zooms to a drag in either direction, never below the minimum span nor into the future', () => {
    expect(zoomTo(NOW - 5000, NOW - 605_000, NOW)).toEqual({ kind: 'absolute', from: NOW - 605_000, to: NOW - 5000 });
    const tiny = zoomTo(NOW - 60_000, NOW - 59_000, NOW);
    expect(tiny).toEqual({ kind: 'absolute', from: NOW - 65_000, to: NOW - 54_000 });
    expect(tiny.to - tiny.from).toBeGreaterThanOrEqual(MIN_SPAN_MS);
    expect(zoomTo(NOW - 10_400, NOW - 200, NOW)).toEqual({ kind: 'absolute', from: NOW - 11_000, to: NOW });
    const future = zoomTo(NOW - 10 * MINUTE_MS, NOW + MINUTE_MS, NOW);
    expect(future).toEqual({ kind: 'absolute', from: NOW - 11 * MINUTE_MS, to: NOW });
  });

  it('pans by a share of the span, stopping at now with the span kept', () => {
    const live = { kind: 'live' as const, id: '1h', spanMs: HOUR_MS };
    expect(panRange(live, -0.5, NOW)).toEqual({ kind: 'absolute', from: NOW - 1.5 * HOUR_MS, to: NOW - 0.5 * HOUR_MS });
    const past = { kind: 'absolute' as const, from: NOW - 3 * HOUR_MS, to: NOW - 2 * HOUR_MS };
    expect(panRange(past, 0.5, NOW)).toEqual({ kind: 'absolute', from: NOW - 2.5 * HOUR_MS, to: NOW - 1.5 * HOUR_MS });
    expect(panRange(past, 5, NOW)).toEqual({ kind: 'absolute', from: NOW - HOUR_MS, to: NOW });
  });

  it('zooms out around the middle', () => {
    const r = zoomOut({ kind: 'absolute', from: NOW - 4 * HOUR_MS, to: NOW - 2 * HOUR_MS }, 2, NOW);
    expect(r).toEqual({ kind: 'absolute', from: NOW - 5 * HOUR_MS, to: NOW - HOUR_MS });
  });
});

describe('point count', () => {
  it('asks about one point per pixel within the server limit', () => {
    expect(pointCountFor(640, 5000)).toBe(640);
    expect(pointCountFor(640.4, 5000)).toBe(640);
    expect(pointCountFor(8000, 5000)).toBe(5000);
    expect(pointCountFor(12, 5000)).toBe(MIN_CHART_POINTS);
    expect(pointCountFor(0, 5000)).toBe(MIN_CHART_POINTS);
    expect(pointCountFor(700, null)).toBe(700);
    expect(pointCountFor(2000, undefined)).toBe(1000);
    expect(pointCountFor(700, 20)).toBe(20);
  });
});

describe('the address', () => {
  it('reads a live link with host and panels', () => {
    expect(readViewUrl('?range=24h&host=web-1&panels=cpu_usage,memory_usage')).toEqual({
      range: { kind: 'live', id: '24h', spanMs: DAY_MS },
      host: 'web-1',
      panels: ['cpu_usage', 'memory_usage'],
      notices: [],
    });
  });

  it('prefers from/to over range and reads ms and ISO alike', () => {
    const ms = readViewUrl('?from=1796601600000&to=1796605200000&range=5m');
    const iso = readViewUrl('?from=2026-12-07T01:00:00Z&to=2026-12-07T02:00:00Z');
    expect(ms.range).toEqual({ kind: 'absolute', from: 1796601600000, to: 1796605200000 });
    expect(iso.range).toEqual({ kind: 'absolute', from: Date.parse('2026-12-07T01:00:00Z'), to: Date.parse('2026-12-07T02:00:00Z') });
  });

  it('drops bad values with a notice and keeps the rest', () => {
    const backwards = readViewUrl('?from=2000&to=1000&host=db');
    expect(backwards.range).toBeNull();
    expect(backwards.host).toBe('db');
    expect(backwards.notices).toHaveLength(1);
    const junk = readViewUrl('?from=later&range=forever');
    expect(junk.range).toBeNull();
    expect(junk.notices).toHaveLength(2);
    expect(readViewUrl('?to=1000').range).toBeNull();
  });

  it('reads `from` alone as from then until now', () => {
    const r = readViewUrl('?from=1000').range;
    expect(r?.kind).toBe('absolute');
    expect(r && r.kind === 'absolute' && r.to).toBeGreaterThan(1000);
  });

  it('writes canonical links that read back to the same view, keeping other parameters', () => {
    const view = { range: { kind: 'absolute' as const, from: 1796601600000.4, to: 1796605200000 }, host: 'web-1', panels: ['cpu_usage', 'disk_read'] };
    const search = writeViewUrl(view, '?debug=1&range=5m');
    expect(search).toBe('?debug=1&from=1796601600000&to=1796605200000&host=web-1&panels=cpu_usage,disk_read');
    expect(readViewUrl(search)).toMatchObject({ range: { kind: 'absolute', from: 1796601600000, to: 1796605200000 }, host: 'web-1', panels: ['cpu_usage', 'disk_read'] });
    expect(writeViewUrl({ range: { kind: 'live', id: '7d', spanMs: 7 * DAY_MS }, host: null, panels: null })).toBe('?range=7d');
  });
});
