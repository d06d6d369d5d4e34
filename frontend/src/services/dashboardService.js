// Protocol parsing, request building and value formatting for the dashd
// browser dashboard. Everything here is pure (no DOM, no network) so it can be
// unit-tested directly; the socket itself lives in hooks/useWebSocket.js.
//
// The wire protocol is docs/protocol.md (version 1).

export const PROTOCOL_VERSION = 1;

export const SECOND_MS = 1000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** Stream messages carry a daemon-wide `seq`. */
export const STREAM_TYPES = new Set(['metrics_update', 'notification', 'notification_ack']);

/** Selectable chart windows (the largest bounds every chart buffer). */
export const TIME_WINDOWS = [
  { id: '1m', label: '1 min', ms: MINUTE_MS },
  { id: '5m', label: '5 min', ms: 5 * MINUTE_MS },
  { id: '15m', label: '15 min', ms: 15 * MINUTE_MS },
  { id: '1h', label: '1 h', ms: HOUR_MS },
];
export const MAX_WINDOW_MS = HOUR_MS;

/** Update-rate choices; `null` means "every sample" (the server's maximum). */
export const RATE_CHOICES = [
  { id: 'live', label: 'Live', hz: null },
  { id: '1', label: '1 / s', hz: 1 },
  { id: '0.5', label: '1 / 2 s', hz: 0.5 },
  { id: '0.2', label: '1 / 5 s', hz: 0.2 },
  { id: '0.1', label: '1 / 10 s', hz: 0.1 },
];

/**
 * Chart groups: what each live chart draws. `metrics` are exact names or the
 * `cpu_core_*` pattern expanded from the catalogue sent in connection_ack.
 */
export const CHART_GROUPS = [
  { id: 'cpu', title: 'CPU', unit: '%', metrics: ['cpu_usage', 'cpu_core_*'], yMax: 100 },
  { id: 'memory', title: 'Memory & swap', unit: '%', metrics: ['memory_usage', 'swap_usage'], yMax: 100 },
  { id: 'network', title: 'Network', unit: 'B/s', metrics: ['network_rx', 'network_tx'] },
  { id: 'disk', title: 'Disk I/O', unit: 'B/s', metrics: ['disk_read', 'disk_write'] },
  { id: 'connections', title: 'Connections', unit: 'count', metrics: ['active_connections'] },
];

/** Metric groups the user can select; each maps to subscription globs. */
export const METRIC_GROUPS = [
  { id: 'cpu', label: 'CPU', patterns: ['cpu_*', 'load_*'] },
  { id: 'memory', label: 'Memory', patterns: ['memory_usage', 'swap_usage'] },
  { id: 'network', label: 'Network', patterns: ['network_*'] },
  { id: 'disk', label: 'Disk', patterns: ['disk_*'] },
  { id: 'system', label: 'System', patterns: ['active_connections', 'process_count', 'uptime'] },
];

/** The key metrics shown as tiles, in display order. */
export const TILE_METRICS = [
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
export const DEFAULT_UNITS = {
  cpu_usage: '%', memory_usage: '%', swap_usage: '%', disk_usage: '%',
  network_traffic: 'B/s', network_rx: 'B/s', network_tx: 'B/s',
  disk_read: 'B/s', disk_write: 'B/s',
  load_1: '', load_5: '', load_15: '',
  process_count: 'count', uptime: 's', active_connections: 'count',
};

/** Warning / critical thresholds for tile colours (value >= threshold). */
export const THRESHOLDS = {
  cpu_usage: { warn: 75, crit: 90 },
  memory_usage: { warn: 80, crit: 90 },
  swap_usage: { warn: 50, crit: 80 },
  disk_usage: { warn: 80, crit: 90 },
};

// ---------------------------------------------------------------------------
// Parsing

/**
 * Parse one text frame into an envelope, or return null for anything that is
 * not a JSON object with a string `type` (the client ignores such frames).
 */
export function parseMessage(text) {
  if (typeof text !== 'string') return null;
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return null;
  if (typeof msg.type !== 'string') return null;
  if (msg.data === undefined || msg.data === null || typeof msg.data !== 'object') msg.data = {};
  if (msg.seq !== undefined && msg.seq !== null && !Number.isFinite(msg.seq)) return null;
  return msg;
}

export function isStreamMessage(msg) {
  return STREAM_TYPES.has(msg.type) && Number.isFinite(msg.seq);
}

/** ISO-8601 / Unix-seconds / Unix-ms to epoch milliseconds, or NaN. */
export function toEpochMs(value) {
  if (typeof value === 'number') return value < 1e11 ? value * SECOND_MS : value;
  if (typeof value === 'string') return Date.parse(value);
  return NaN;
}

/**
 * A `metrics_update` as a flat sample: `{t, seq, host, values, recovered}`.
 * Non-numeric metric values are dropped (the protocol leaves out rates it
 * cannot compute rather than sending false zeros; we do the same with junk).
 */
export function toSample(msg) {
  const d = msg.data || {};
  const t = toEpochMs(d.timestamp);
  if (!Number.isFinite(t)) return null;
  const values = {};
  const metrics = d.metrics && typeof d.metrics === 'object' ? d.metrics : {};
  for (const [name, v] of Object.entries(metrics)) {
    if (typeof v === 'number' && Number.isFinite(v)) values[name] = v;
  }
  return { t, seq: msg.seq, host: d.host ?? null, values, recovered: d.recovered === true || msg.recovered === true };
}

/** A `history` reply as `{name: [{x, y}]}` sorted by x, plus its bucket size. */
export function historyToSeries(data) {
  const out = {};
  const series = (data && data.series) || {};
  for (const [name, points] of Object.entries(series)) {
    if (!Array.isArray(points)) continue;
    const pts = [];
    for (const p of points) {
      if (p && Number.isFinite(p.t) && Number.isFinite(p.avg)) pts.push({ x: p.t, y: p.avg });
    }
    pts.sort((a, b) => a.x - b.x);
    out[name] = pts;
  }
  return { series: out, bucketMs: Number.isFinite(data?.bucket_ms) ? data.bucket_ms : 0 };
}

/** Expand chart-group patterns (`cpu_core_*`) against the catalogue names. */
export function expandMetrics(patterns, catalogueNames) {
  const out = [];
  for (const p of patterns) {
    if (p.endsWith('*')) {
      const prefix = p.slice(0, -1);
      const matches = catalogueNames.filter((n) => n.startsWith(prefix));
      matches.sort(naturalCompare);
      out.push(...matches);
    } else {
      out.push(p);
    }
  }
  return [...new Set(out)];
}

function naturalCompare(a, b) {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Subscription globs for the selected metric groups. */
export function subscriptionFor(groupIds) {
  const out = [];
  for (const g of METRIC_GROUPS) if (groupIds.includes(g.id)) out.push(...g.patterns);
  return out;
}

/** The metric group a metric name belongs to (for hiding deselected tiles/charts). */
export function groupOfMetric(name) {
  for (const g of METRIC_GROUPS) {
    for (const p of g.patterns) {
      if (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p) return g.id;
    }
  }
  return null;
}

/** Decode a JWT's payload without verifying it (the server verifies). */
export function decodeJwt(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const json = decodeURIComponent(
      Array.from(atob(padded), (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''),
    );
    const payload = JSON.parse(json);
    return payload && typeof payload === 'object' ? payload : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------
// Reconnect policy

export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 30 * SECOND_MS;

/**
 * Exponential back-off with "equal jitter": attempt 1 waits 0.5–1 × base,
 * each further attempt doubles, capped at `maxMs`. `random` is injectable.
 */
export function backoffDelay(attempt, { baseMs = RECONNECT_BASE_MS, maxMs = RECONNECT_MAX_MS, random = Math.random } = {}) {
  const n = Math.max(1, attempt);
  const ceiling = Math.min(maxMs, baseMs * 2 ** (n - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

// ---------------------------------------------------------------------------
// Roles

const ROLE_RANK = { viewer: 1, operator: 2, admin: 3, agent: 0 };

export function roleAtLeast(role, needed) {
  return (ROLE_RANK[role] ?? 0) >= (ROLE_RANK[needed] ?? 99);
}

// ---------------------------------------------------------------------------
// Formatting

const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

function trimNumber(v, digits) {
  // 3 significant digits, but never more decimals than `digits`.
  const abs = Math.abs(v);
  const decimals = abs >= 100 ? 0 : abs >= 10 ? Math.min(1, digits) : digits;
  return v.toFixed(decimals);
}

/** 1536 -> "1.50 KiB". */
export function formatBytes(bytes, digits = 2) {
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
export function formatBytesPerSecond(bps, digits = 2) {
  if (!Number.isFinite(bps)) return '—';
  return `${formatBytes(bps, digits)}/s`;
}

export function formatPercent(v, digits = 1) {
  if (!Number.isFinite(v)) return '—';
  return `${v.toFixed(digits)} %`;
}

export function formatCount(v) {
  if (!Number.isFinite(v)) return '—';
  return Math.round(v).toLocaleString('en-US');
}

/** Seconds to a compact duration: "3d 4h", "5h 12m", "7m 03s", "42s". */
export function formatDuration(seconds) {
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
export function formatMetricParts(value, unit) {
  if (!Number.isFinite(value)) return { value: '—', unit: unitLabel(unit) };
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

export function formatMetric(value, unit) {
  const { value: v, unit: u } = formatMetricParts(value, unit);
  return u ? `${v} ${u}` : v;
}

function unitLabel(unit) {
  if (!unit || unit === '—' || unit === 'count') return '';
  return unit;
}

/** Compact axis tick for a unit: "2 MiB/s", "50 %", "1.5k". */
export function formatAxisTick(value, unit) {
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
export function axisTitle(unit) {
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

function pad2(n) {
  return String(n).padStart(2, '0');
}

/** Local wall-clock "HH:MM:SS" (or "HH:MM" when `seconds` is false). */
export function formatClock(ms, seconds = true) {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return seconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
}

/** "5 s ago", "3 min ago" relative to `now`. */
export function formatAgo(ms, now = Date.now()) {
  if (!Number.isFinite(ms)) return '';
  const s = Math.max(0, Math.round((now - ms) / SECOND_MS));
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} d ago`;
}

export function formatRate(hz) {
  if (!Number.isFinite(hz)) return '—';
  return hz >= 10 ? hz.toFixed(0) : hz.toFixed(1);
}

/** Tile colour level for a metric value: "ok" | "warn" | "crit". */
export function levelFor(name, value, { cores = 1 } = {}) {
  if (!Number.isFinite(value)) return 'ok';
  let t = THRESHOLDS[name];
  if (!t && name === 'load_1') t = { warn: cores, crit: 2 * cores };
  if (!t) return 'ok';
  if (value >= t.crit) return 'crit';
  if (value >= t.warn) return 'warn';
  return 'ok';
}
