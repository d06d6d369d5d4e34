// Value formatting for tiles, charts and lists: bytes, rates, durations,
// clocks, "ago", and the tile colour level of a value.
import { SECOND_MS, THRESHOLDS, type Threshold } from './constants';

export type Level = 'ok' | 'warn' | 'crit';

export interface MetricParts {
  value: string;
  unit: string;
}


const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function trimNumber(v: number, digits: number): string {
  // 3 significant digits, but never more decimals than `digits`.
  const abs = Math.abs(v);
  const decimals = abs >= 100 ? 0 : abs >= 10 ? Math.min(1, digits) : digits;
  return v.toFixed(decimals);
}

/** 1536 -> "1.50 KiB". */
export function formatBytes(bytes: number, digits = 2): string {
  if (!Number.isFinite(bytes)) return '—';
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < BINARY_UNITS.length - 1) {
    v /= 1024;
    i += 1;
  }
  if (i === 0) return `${Math.round(v)} B`;
  return `${trimNumber(v, digits)} ${BINARY_UNITS[i]}`;
}

/** 1536 -> "1.50 KiB/s". */
export function formatBytesPerSecond(bps: number, digits = 2): string {
  if (!Number.isFinite(bps)) return '—';
  return `${formatBytes(bps, digits)}/s`;
}

export function formatPercent(v: number, digits = 1): string {
  if (!Number.isFinite(v)) return '—';
  return `${v.toFixed(digits)} %`;
}

export function formatCount(v: number): string {
  if (!Number.isFinite(v)) return '—';
  return Math.round(v).toLocaleString('en-US');
}

/** Seconds to a compact duration: "3d 4h", "5h 12m", "7m 03s", "42s". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

/** Format a metric value by its catalogue unit. Returns `{value, unit}` for tiles. */
export function formatMetricParts(value: number | null | undefined, unit: string | null | undefined): MetricParts {
  if (typeof value !== 'number' || !Number.isFinite(value)) return { value: '—', unit: unitLabel(unit) };
  switch (unit) {
    case '%':
      return { value: value.toFixed(1), unit: '%' };
    case 'B/s': {
      const [num, u] = formatBytesPerSecond(value).split(' ');
      return { value: num, unit: u };
    }
    case 'B': {
      const [num, u] = formatBytes(value).split(' ');
      return { value: num, unit: u };
    }
    case 's':
      return { value: formatDuration(value), unit: '' };
    case 'count':
      return { value: formatCount(value), unit: '' };
    default:
      return { value: Math.abs(value) >= 100 ? value.toFixed(0) : value.toFixed(2), unit: unitLabel(unit) };
  }
}

export function formatMetric(value: number | null | undefined, unit: string | null | undefined): string {
  const { value: v, unit: u } = formatMetricParts(value, unit);
  return u ? `${v} ${u}` : v;
}

function unitLabel(unit: string | null | undefined): string {
  if (!unit || unit === '—' || unit === 'count') return '';
  return unit;
}

/** Compact axis tick for a unit: "2 MiB/s", "50 %", "1.5k". */
export function formatAxisTick(value: number, unit: string | null | undefined): string {
  if (!Number.isFinite(value)) return '';
  switch (unit) {
    case '%':
      return `${Math.round(value)} %`;
    case 'B/s':
      return formatBytesPerSecond(value, 1);
    case 'B':
      return formatBytes(value, 1);
    case 'count':
      return Math.abs(value) >= 1000 ? `${(value / 1000).toFixed(1)}k` : String(Math.round(value * 100) / 100);
    default:
      return String(Math.round(value * 100) / 100);
  }
}

/** Axis title text with the unit, e.g. "Throughput (B/s, binary prefixes)". */
export function axisTitle(unit: string | null | undefined): string {
  switch (unit) {
    case '%':
      return 'Percent (%)';
    case 'B/s':
      return 'Throughput (bytes/s)';
    case 'count':
      return 'Count';
    default:
      return unit || '';
  }
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Local wall-clock "HH:MM:SS" (or "HH:MM" when `seconds` is false). */
export function formatClock(ms: number, seconds = true): string {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return seconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** "5 s ago", "3 min ago" relative to `now`. */
export function formatAgo(ms: number, now: number = Date.now()): string {
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.round((now - ms) / SECOND_MS));
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

export function formatRate(hz: number | null | undefined): string {
  if (typeof hz !== 'number' || !Number.isFinite(hz)) return '—';
  return hz >= 10 ? hz.toFixed(0) : hz.toFixed(1);
}

/** Tile colour level for a metric value: "ok" | "warn" | "crit". */
export function levelFor(name: string, value: number, { cores = 1 }: { cores?: number } = {}): Level {
  if (!Number.isFinite(value)) return 'ok';
  let t: Threshold | undefined = THRESHOLDS[name];
  if (!t && name === 'load_1') t = { warn: cores, crit: 2 * cores };
  if (!t) return 'ok';
  if (value >= t.crit) return 'crit';
  if (value >= t.warn) return 'warn';
  return 'ok';
}
