// Series names as the server writes them (src/dashd/collect/series_names.py):
// parsing, the canonical form (labels sorted, Prometheus escaping) and junk.
import { describe, expect, it } from 'vitest';
import { createSeriesNameCache, escapeLabelValue, formatSeriesName, parseSeriesName } from './series';

describe('parseSeriesName', () => {
  it('parses a bare family (the seed metrics) with no labels', () => {
    expect(parseSeriesName('cpu_usage')).toEqual({ family: 'cpu_usage', labels: {} });
  });

  it('parses the labels of a labelled series', () => {
    expect(parseSeriesName('disk_used_percent{fstype="ext4",mount="/var/lib/data"}')).toEqual({
      family: 'disk_used_percent',
      labels: { fstype: 'ext4', mount: '/var/lib/data' },
    });
  });

  it('unescapes backslash, double quote and newline in values', () => {
    const parsed = parseSeriesName('cgroup_pids{cgroup="/a\\\\b",unit="say \\"hi\\"\\nbye"}');
    expect(parsed?.labels).toEqual({ cgroup: '/a\\b', unit: 'say "hi"\nbye' });
  });

  it('keeps commas, braces and equals signs inside quoted values', () => {
    expect(parseSeriesName('x{a="1,b=2}",c="{}"}')?.labels).toEqual({ a: '1,b=2}', c: '{}' });
  });

  it.each([
    ['', 'empty'],
    ['9lives', 'family starts with a digit'],
    ['x{a="1"', 'no closing brace'],
    ['x{a=1}', 'unquoted value'],
    ['x{a="1",a="2"}', 'a label twice'],
    ['x{a="1"b="2"}', 'no comma between labels'],
    ['x{a="\\t"}', 'an escape Prometheus does not have'],
    ['x{a="open}', 'unterminated value'],
  ])('rejects %j (%s)', (text) => {
    expect(parseSeriesName(text)).toBeNull();
  });
});

describe('formatSeriesName', () => {
  it('sorts labels by name and escapes values, as the server does', () => {
    expect(formatSeriesName('net_rx_bytes_per_second', { iface: 'eth0' })).toBe('net_rx_bytes_per_second{iface="eth0"}');
    expect(formatSeriesName('disk_used_percent', { mount: '/', fstype: 'ext4' })).toBe('disk_used_percent{fstype="ext4",mount="/"}');
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });

  it('is the inverse of parseSeriesName', () => {
    const names = ['cpu_usage', 'x{a="1,2",b="q\\"uote",c="back\\\\slash\\nline"}', 'sensor_fan_rpm{chip="thinkpad",sensor="fan1"}'];
    for (const name of names) {
      const p = parseSeriesName(name);
      expect(p).not.toBeNull();
      expect(formatSeriesName(p!.family, p!.labels)).toBe(name);
    }
  });
});

describe('createSeriesNameCache', () => {
  it('returns the same parse for the same name and remembers failures', () => {
    const parse = createSeriesNameCache(2);
    const a = parse('x{a="1"}');
    expect(parse('x{a="1"}')).toBe(a);
    expect(parse('bad{')).toBeNull();
    expect(parse('bad{')).toBeNull();
    // Over the bound the memo starts again rather than grow.
    expect(parse('y')).toEqual({ family: 'y', labels: {} });
    expect(parse('x{a="1"}')).toEqual(a);
  });
});
