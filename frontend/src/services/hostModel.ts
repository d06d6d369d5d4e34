// What the host panels show, computed from the newest value of every
// labelled series (issue 19): file systems per `mount`, interfaces per
// `iface`, disks per `device`, services and containers per `cgroup`, sensors
// per `chip`/`sensor` and `battery`. Family names follow the collectors
// (src/dashd/collect/{filesystems,netifs,disks,cgroups,sensors}.py). Pure:
// the panels and the tests hand it plain values.
import type { SeriesName } from '../protocol/series';

/** The newest value of one series. */
export interface SeriesValue {
  name: string;
  family: string;
  labels: Readonly<Record<string, string>>;
  value: number;
  t: number;
}

/** Family -> its series' newest values. */
export type SeriesIndex = ReadonlyMap<string, readonly SeriesValue[]>;

/** Family prefixes of the host panels (history seeding asks for these). */
export const HOST_FAMILY_PREFIXES = ['disk_', 'net_', 'cgroup_', 'sensor_', 'battery_'] as const;

export function isHostFamily(family: string): boolean {
  return HOST_FAMILY_PREFIXES.some((p) => family.startsWith(p));
}

/**
 * Subscription globs that keep the host panels fed when the dashboard
 * narrows its subscription to some metric groups: one per host family
 * prefix the server announces (a glob that matches nothing is an error).
 */
export function hostSubscription(families: readonly { name: string }[] | null | undefined): string[] {
  return HOST_FAMILY_PREFIXES.filter((p) => (families ?? []).some((f) => f.name.startsWith(p))).map((p) => `${p}*`);
}

/** Index the newest values of labelled host series by family. */
export function indexSeries(
  entries: Iterable<{ name: string; value: number; t: number }>,
  parse: (name: string) => SeriesName | null,
): Map<string, SeriesValue[]> {
  const index = new Map<string, SeriesValue[]>();
  for (const { name, value, t } of entries) {
    if (!name.includes('{')) continue;
    const parsed = parse(name);
    if (!parsed || !isHostFamily(parsed.family)) continue;
    let list = index.get(parsed.family);
    if (!list) index.set(parsed.family, (list = []));
    list.push({ name, family: parsed.family, labels: parsed.labels, value, t });
  }
  return index;
}

/** key label value -> {family: value} over the given families. */
function byLabel(index: SeriesIndex, label: string, families: readonly string[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const family of families) {
    for (const s of index.get(family) ?? []) {
      const key = s.labels[label];
      if (key === undefined) continue;
      let row = out.get(key);
      if (!row) out.set(key, (row = {}));
      row[family] = s.value;
    }
  }
  return out;
}

function numOrNull(v: number | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Newest sample time over the given families, or NaN. */
export function newestOf(index: SeriesIndex, prefix: string): number {
  let t = NaN;
  for (const [family, list] of index) {
    if (!family.startsWith(prefix)) continue;
    for (const s of list) if (!(s.t <= t)) t = s.t;
  }
  return t;
}

// -- file systems --------------------------------------------------------------

export interface Filesystem {
  mount: string;
  fstype: string;
  sizeBytes: number | null;
  usedBytes: number | null;
  freeBytes: number | null;
  usedPercent: number | null;
  inodesUsedPercent: number | null;
}

const FS_FAMILIES = ['disk_size_bytes', 'disk_used_bytes', 'disk_free_bytes', 'disk_used_percent', 'disk_inodes_used_percent'];

/** One row per mount point, `/` first, then by path. */
export function filesystemsOf(index: SeriesIndex): Filesystem[] {
  const fstypes = new Map<string, string>();
  for (const f of FS_FAMILIES) for (const s of index.get(f) ?? []) if (s.labels.mount !== undefined && s.labels.fstype) fstypes.set(s.labels.mount, s.labels.fstype);
  return [...byLabel(index, 'mount', FS_FAMILIES)]
    .map(([mount, v]) => ({
      mount,
      fstype: fstypes.get(mount) ?? '',
      sizeBytes: numOrNull(v.disk_size_bytes),
      usedBytes: numOrNull(v.disk_used_bytes),
      freeBytes: numOrNull(v.disk_free_bytes),
      usedPercent: numOrNull(v.disk_used_percent),
      inodesUsedPercent: numOrNull(v.disk_inodes_used_percent),
    }))
    .sort((a, b) => (a.mount === '/' ? -1 : b.mount === '/' ? 1 : a.mount.localeCompare(b.mount)));
}

// -- network interfaces --------------------------------------------------------

export interface NetInterface {
  iface: string;
  up: boolean | null;
  speedMbps: number | null;
  rxBps: number | null;
  txBps: number | null;
  rxPackets: number | null;
  txPackets: number | null;
  errors: number | null;
  drops: number | null;
}

const NET_FAMILIES = [
  'net_rx_bytes_per_second',
  'net_tx_bytes_per_second',
  'net_rx_packets_per_second',
  'net_tx_packets_per_second',
  'net_rx_errors_per_second',
  'net_tx_errors_per_second',
  'net_rx_drops_per_second',
  'net_tx_drops_per_second',
  'net_link_up',
  'net_speed_mbps',
];

function sumOrNull(a: number | undefined, b: number | undefined): number | null {
  if (!Number.isFinite(a) && !Number.isFinite(b)) return null;
  return (Number.isFinite(a) ? (a as number) : 0) + (Number.isFinite(b) ? (b as number) : 0);
}

/** One row per interface: busiest first, loopback last. */
export function interfacesOf(index: SeriesIndex): NetInterface[] {
  return [...byLabel(index, 'iface', NET_FAMILIES)]
    .map(([iface, v]) => ({
      iface,
      up: v.net_link_up === undefined ? null : v.net_link_up > 0,
      speedMbps: numOrNull(v.net_speed_mbps),
      rxBps: numOrNull(v.net_rx_bytes_per_second),
      txBps: numOrNull(v.net_tx_bytes_per_second),
      rxPackets: numOrNull(v.net_rx_packets_per_second),
      txPackets: numOrNull(v.net_tx_packets_per_second),
      errors: sumOrNull(v.net_rx_errors_per_second, v.net_tx_errors_per_second),
      drops: sumOrNull(v.net_rx_drops_per_second, v.net_tx_drops_per_second),
    }))
    .sort((a, b) => Number(a.iface === 'lo') - Number(b.iface === 'lo') || a.iface.localeCompare(b.iface));
}

// -- disks --------------------------------------------------------------------

export interface Disk {
  device: string;
  readBps: number | null;
  writeBps: number | null;
  readsPerSecond: number | null;
  writesPerSecond: number | null;
  busyPercent: number | null;
}

const DISK_FAMILIES = [
  'disk_io_read_bytes_per_second',
  'disk_io_write_bytes_per_second',
  'disk_io_reads_per_second',
  'disk_io_writes_per_second',
  'disk_io_busy_percent',
];

export function disksOf(index: SeriesIndex): Disk[] {
  return [...byLabel(index, 'device', DISK_FAMILIES)]
    .map(([device, v]) => ({
      device,
      readBps: numOrNull(v.disk_io_read_bytes_per_second),
      writeBps: numOrNull(v.disk_io_write_bytes_per_second),
      readsPerSecond: numOrNull(v.disk_io_reads_per_second),
      writesPerSecond: numOrNull(v.disk_io_writes_per_second),
      busyPercent: numOrNull(v.disk_io_busy_percent),
    }))
    .sort((a, b) => a.device.localeCompare(b.device));
}

// -- services and containers -------------------------------------------------

export type CgroupKind = 'service' | 'container' | 'group';

export interface CgroupRow {
  cgroup: string;
  name: string;
  kind: CgroupKind;
  cpuPercent: number | null;
  memoryUsedBytes: number | null;
  /** null: no limit (cgroup v1 writes "unlimited" as a page-rounded 2^63). */
  memoryLimitBytes: number | null;
  ioReadBps: number | null;
  ioWriteBps: number | null;
  pids: number | null;
}

const CGROUP_FAMILIES = [
  'cgroup_cpu_percent',
  'cgroup_memory_used_bytes',
  'cgroup_memory_limit_bytes',
  'cgroup_io_read_bytes_per_second',
  'cgroup_io_write_bytes_per_second',
  'cgroup_pids',
];
/** Limits at or above this are "no limit" (v1: 9223372036854771712; v2 sends "max"). */
export const UNLIMITED_BYTES = 2 ** 60;

/** One row per control group, busiest CPU first: a unit or container name where the path gives one. */
export function servicesOf(index: SeriesIndex): CgroupRow[] {
  const names = new Map<string, { name: string; kind: CgroupKind }>();
  for (const f of CGROUP_FAMILIES) {
    for (const s of index.get(f) ?? []) {
      const { cgroup, unit, container, pod } = s.labels;
      if (cgroup === undefined || names.has(cgroup)) continue;
      if (container) names.set(cgroup, { name: pod ? `${pod} / ${container}` : container, kind: 'container' });
      else if (unit) names.set(cgroup, { name: unit, kind: 'service' });
      else names.set(cgroup, { name: cgroup, kind: 'group' });
    }
  }
  return [...byLabel(index, 'cgroup', CGROUP_FAMILIES)]
    .map(([cgroup, v]) => {
      const limit = numOrNull(v.cgroup_memory_limit_bytes);
      return {
        cgroup,
        ...(names.get(cgroup) ?? { name: cgroup, kind: 'group' as const }),
        cpuPercent: numOrNull(v.cgroup_cpu_percent),
        memoryUsedBytes: numOrNull(v.cgroup_memory_used_bytes),
        memoryLimitBytes: limit !== null && limit > 0 && limit < UNLIMITED_BYTES ? limit : null,
        ioReadBps: numOrNull(v.cgroup_io_read_bytes_per_second),
        ioWriteBps: numOrNull(v.cgroup_io_write_bytes_per_second),
        pids: numOrNull(v.cgroup_pids),
      };
    })
    .sort((a, b) => (b.cpuPercent ?? -1) - (a.cpuPercent ?? -1) || (b.memoryUsedBytes ?? -1) - (a.memoryUsedBytes ?? -1) || a.name.localeCompare(b.name));
}

// -- sensors --------------------------------------------------------------------

export interface Temperature {
  chip: string;
  sensor: string;
  celsius: number;
  highCelsius: number | null;
  criticalCelsius: number | null;
}

export interface Fan {
  chip: string;
  sensor: string;
  rpm: number;
}

export interface Battery {
  battery: string;
  percent: number;
  charging: boolean | null;
}

export interface Sensors {
  temperatures: Temperature[];
  fans: Fan[];
  batteries: Battery[];
}

function chipSensorKey(labels: Readonly<Record<string, string>>): string {
  return `${labels.chip ?? ''}\u0000${labels.sensor ?? ''}`;
}

/** Temperatures (with thresholds where the chip has them), fans and batteries; empty lists when absent. */
export function sensorsOf(index: SeriesIndex): Sensors {
  const thresholds = (family: string) => new Map((index.get(family) ?? []).map((s) => [chipSensorKey(s.labels), s.value]));
  const high = thresholds('sensor_temperature_high_celsius');
  const crit = thresholds('sensor_temperature_critical_celsius');
  const temperatures = (index.get('sensor_temperature_celsius') ?? [])
    .map((s) => ({
      chip: s.labels.chip ?? '',
      sensor: s.labels.sensor ?? '',
      celsius: s.value,
      highCelsius: high.get(chipSensorKey(s.labels)) ?? null,
      criticalCelsius: crit.get(chipSensorKey(s.labels)) ?? null,
    }))
    .sort((a, b) => a.chip.localeCompare(b.chip) || a.sensor.localeCompare(b.sensor, undefined, { numeric: true }));
  const fans = (index.get('sensor_fan_rpm') ?? [])
    .map((s) => ({ chip: s.labels.chip ?? '', sensor: s.labels.sensor ?? '', rpm: s.value }))
    .sort((a, b) => a.chip.localeCompare(b.chip) || a.sensor.localeCompare(b.sensor, undefined, { numeric: true }));
  const charging = new Map((index.get('battery_charging') ?? []).map((s) => [s.labels.battery ?? '', s.value > 0]));
  const batteries = (index.get('battery_percent') ?? [])
    .map((s) => ({ battery: s.labels.battery ?? '', percent: s.value, charging: charging.get(s.labels.battery ?? '') ?? null }))
    .sort((a, b) => a.battery.localeCompare(b.battery));
  return { temperatures, fans, batteries };
}

export type UsageLevel = 'ok' | 'warn' | 'crit';

/** Level of a usage percentage (file systems): 85 % warns, 95 % is critical. */
export function usageLevel(percent: number | null): UsageLevel {
  if (percent === null) return 'ok';
  if (percent >= 95) return 'crit';
  if (percent >= 85) return 'warn';
  return 'ok';
}

/** Level of a temperature against its own thresholds (the chip's high and critical). */
export function temperatureLevel(t: Temperature): UsageLevel {
  if (t.criticalCelsius !== null && t.celsius >= t.criticalCelsius) return 'crit';
  if (t.highCelsius !== null && t.celsius >= t.highCelsius) return 'warn';
  return 'ok';
}
