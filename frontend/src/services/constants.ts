// Time units, chart windows, update rates, metric groups, tiles, units and
// thresholds of the dashboard: the page's fixed configuration.

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

export interface TimeWindow {
  id: string;
  label: string;
  ms: number;
}

/**
 * Selectable live ranges. Up to MAX_WINDOW_MS the charts draw the live
 * buffer; longer ones draw `history` (one query per chart, about one point
 * per pixel) and refresh it as the stream moves on.
 */
export const TIME_WINDOWS: readonly TimeWindow[] = [
  { id: '1m', label: '1 min', ms: MINUTE_MS },
  { id: '5m', label: '5 min', ms: 5 * MINUTE_MS },
  { id: '15m', label: '15 min', ms: 15 * MINUTE_MS },
  { id: '1h', label: '1 h', ms: HOUR_MS },
  { id: '6h', label: '6 h', ms: 6 * HOUR_MS },
  { id: '24h', label: '24 h', ms: 24 * HOUR_MS },
  { id: '7d', label: '7 d', ms: 7 * DAY_MS },
  { id: '30d', label: '30 d', ms: 30 * DAY_MS },
  { id: '90d', label: '90 d', ms: 90 * DAY_MS },
  { id: '1y', label: '1 y', ms: 365 * DAY_MS },
];
/** The longest range the live buffer covers (every chart buffer is bounded by it). */
export const MAX_WINDOW_MS = HOUR_MS;

export interface RateChoice {
  id: string;
  label: string;
  hz: number | null;
}

/** Update-rate choices; `null` means "every sample" (the server's maximum). */
export const RATE_CHOICES: readonly RateChoice[] = [
  { id: 'live', label: 'Live', hz: null },
  { id: '1', label: '1 / s', hz: 1 },
  { id: '0.5', label: '1 / 2 s', hz: 0.5 },
  { id: '0.2', label: '1 / 5 s', hz: 0.2 },
  { id: '0.1', label: '1 / 10 s', hz: 0.1 },
];

export interface MetricGroup {
  id: string;
  label: string;
  patterns: string[];
}

/** Metric groups the user can select; each maps to subscription globs. */
export const METRIC_GROUPS: readonly MetricGroup[] = [
  { id: 'cpu', label: 'CPU', patterns: ['cpu_*', 'load_*'] },
  { id: 'memory', label: 'Memory', patterns: ['memory_usage', 'swap_usage'] },
  { id: 'network', label: 'Network', patterns: ['network_*'] },
  { id: 'disk', label: 'Disk', patterns: ['disk_*'] },
  { id: 'system', label: 'System', patterns: ['active_connections', 'process_count', 'uptime'] },
];

/** Subscription globs for the selected metric groups. */
export function subscriptionFor(groupIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const g of METRIC_GROUPS) if (groupIds.includes(g.id)) out.push(...g.patterns);
  return out;
}

/** The metric group a metric name belongs to (for hiding deselected tiles/charts). */
export function groupOfMetric(name: string): string | null {
  for (const g of METRIC_GROUPS) {
    for (const p of g.patterns) {
      if (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p) return g.id;
    }
  }
  return null;
}

export interface TileMetric {
  name: string;
  label: string;
  group: string;
}

/** The key metrics shown as tiles, in display order. */
export const TILE_METRICS: readonly TileMetric[] = [
  { name: 'cpu_usage', label: 'CPU', group: 'cpu' },
  { name: 'load_1', label: 'Load (1 min)', group: 'cpu' },
  { name: 'memory_usage', label: 'Memory', group: 'memory' },
  { name: 'swap_usage', label: 'Swap', group: 'memory' },
  { name: 'network_rx', label: 'Network in', group: 'network' },
  { name: 'network_tx', label: 'Network out', group: 'network' },
  { name: 'disk_read', label: 'Disk read', group: 'disk' },
  { name: 'disk_write', label: 'Disk write', group: 'disk' },
  { name: 'disk_usage', label: 'Disk used', group: 'disk' },
  { name: 'active_connections', label: 'Dashboard clients', group: 'system' },
  { name: 'process_count', label: 'Processes', group: 'system' },
  { name: 'uptime', label: 'Uptime', group: 'system' },
];

/** Units of the documented catalogue, used until connection_ack brings the real one. */
export const DEFAULT_UNITS: Readonly<Record<string, string>> = {
  cpu_usage: '%', memory_usage: '%', swap_usage: '%', disk_usage: '%',
  network_traffic: 'B/s', network_rx: 'B/s', network_tx: 'B/s',
  disk_read: 'B/s', disk_write: 'B/s',
  load_1: '', load_5: '', load_15: '',
  process_count: 'count', uptime: 's', active_connections: 'count',
};

export interface Threshold {
  warn: number;
  crit: number;
}

/** Warning / critical thresholds for tile colours (value >= threshold). */
export const THRESHOLDS: Readonly<Record<string, Threshold>> = {
  cpu_usage: { warn: 75, crit: 90 },
  memory_usage: { warn: 80, crit: 90 },
  swap_usage: { warn: 50, crit: 80 },
  disk_usage: { warn: 80, crit: 90 },
};

