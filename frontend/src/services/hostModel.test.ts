// Panel models from a recorded metrics_update: file systems, interfaces,
// disks, services and containers, sensors (present and absent).
import { describe, expect, it } from 'vitest';
import { HOST_METRICS, SENSOR_METRICS } from '../components/host/hostFrames.fixture';
import { parseSeriesName } from '../protocol/series';
import { hostSubscription, disksOf, filesystemsOf, indexSeries, interfacesOf, newestOf, sensorsOf, servicesOf, temperatureLevel, usageLevel } from './hostModel';

const index = (metrics: Record<string, number>, t = 1000) =>
  indexSeries(Object.entries(metrics).map(([name, value]) => ({ name, value, t })), parseSeriesName);

describe('host panel models from a recorded frame', () => {
  it('indexes only labelled host families (not the seed metrics, not tcp_connections)', () => {
    const idx = index(HOST_METRICS);
    expect(idx.has('disk_used_percent')).toBe(true);
    expect(idx.has('cpu_usage')).toBe(false);
    expect(idx.has('tcp_connections')).toBe(false);
    expect(newestOf(idx, 'net_')).toBe(1000);
  });

  it('file systems: one row per mount, root first, with size, used, free and inodes', () => {
    const fs = filesystemsOf(index(HOST_METRICS));
    expect(fs.map((f) => f.mount)).toEqual(['/', '/var/lib/data']);
    expect(fs[0]).toEqual({
      mount: '/',
      fstype: 'ext4',
      sizeBytes: 270553174016,
      usedBytes: 28249321472,
      freeBytes: 80694972416,
      usedPercent: 25.93,
      inodesUsedPercent: 3.29,
    });
    expect(fs[1].inodesUsedPercent).toBeNull();
    expect(usageLevel(fs[0].usedPercent)).toBe('ok');
    expect(usageLevel(fs[1].usedPercent)).toBe('crit');
    expect(usageLevel(88)).toBe('warn');
  });

  it('interfaces: link state and speed, rates, errors and drops summed; loopback last', () => {
    const ifs = interfacesOf(index(HOST_METRICS));
    expect(ifs.map((i) => i.iface)).toEqual(['eth0', 'ifb0', 'lo']);
    expect(ifs[0]).toMatchObject({ up: true, speedMbps: 10000, rxBps: 52000.5, txBps: 7100, errors: 0, drops: 0.5 });
    expect(ifs[1]).toMatchObject({ up: false, speedMbps: null, errors: null, drops: null });
  });

  it('disks: per device rates, IOPS and busy %', () => {
    expect(disksOf(index(HOST_METRICS))).toEqual([
      { device: 'vda', readBps: 762430.99, writeBps: 7991406.33, readsPerSecond: 87.65, writesPerSecond: 545.62, busyPercent: 4.33 },
    ]);
  });

  it('services and containers: named by unit or container, busiest first, v1 "unlimited" is no limit', () => {
    const rows = servicesOf(index(HOST_METRICS));
    expect(rows.map((r) => [r.name, r.kind])).toEqual([
      ['3f2a9c1b7d4e', 'container'],
      ['nginx.service', 'service'],
      ['/process_api', 'group'],
      ['/process_api/050db79b260e2074706424f5674658e7', 'group'],
    ]);
    expect(rows[0]).toMatchObject({ cpuPercent: 48, memoryUsedBytes: 268435456, memoryLimitBytes: 536870912, ioReadBps: 1024, ioWriteBps: 2048 });
    expect(rows[1]).toMatchObject({ memoryLimitBytes: null, pids: 5 });
  });

  it('sensors: none on a host without them', () => {
    expect(sensorsOf(index(HOST_METRICS))).toEqual({ temperatures: [], fans: [], batteries: [] });
  });

  it('sensors: temperatures with their own thresholds, fans, batteries', () => {
    const s = sensorsOf(index({ ...HOST_METRICS, ...SENSOR_METRICS }));
    expect(s.temperatures).toEqual([
      { chip: 'coretemp', sensor: 'Core 0', celsius: 91, highCelsius: 90, criticalCelsius: 100 },
      { chip: 'coretemp', sensor: 'Package id 0', celsius: 55, highCelsius: null, criticalCelsius: null },
    ]);
    expect(s.temperatures.map(temperatureLevel)).toEqual(['warn', 'ok']);
    expect(s.fans).toEqual([{ chip: 'thinkpad', sensor: 'fan1', rpm: 2900 }]);
    expect(s.batteries).toEqual([{ battery: 'BAT0', percent: 87, charging: true }]);
  });
});

describe('hostSubscription', () => {
  it('asks for the host families the server announces, and nothing it does not', () => {
    expect(hostSubscription([{ name: 'cpu_usage' }, { name: 'net_rx_bytes_per_second' }, { name: 'cgroup_pids' }])).toEqual(['net_*', 'cgroup_*']);
    expect(hostSubscription(undefined)).toEqual([]);
  });
});
