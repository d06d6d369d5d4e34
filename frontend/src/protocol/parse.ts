// Parsing of server frames (docs/protocol.md, version 1). Pure: no DOM, no
// network, so it is unit-tested directly.
import { SECOND_MS } from '../services/constants';
import type { Envelope, HistoryData, Point, Sample, StreamMessageType } from './types';

export const PROTOCOL_VERSION = 1;

/** Stream messages carry a daemon-wide `seq`. */
export const STREAM_TYPES: ReadonlySet<string> = new Set<StreamMessageType>(['metrics_update', 'notification', 'notification_ack']);

/**
 * Parse one text frame into an envelope, or return null for anything that is
 * not a JSON object with a string `type` (the client ignores such frames).
 */
export function parseMessage(text: unknown): Envelope | null {
  if (typeof text !== 'string') return null;
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return null;
  }
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return null;
  const env = msg as Record<string, unknown>;
  if (typeof env.type !== 'string') return null;
  if (env.data === undefined || env.data === null || typeof env.data !== 'object') env.data = {};
  if (env.seq !== undefined && env.seq !== null && !Number.isFinite(env.seq)) return null;
  return env as unknown as Envelope;
}

export function isStreamMessage(msg: Pick<Envelope, 'type' | 'seq'>): boolean {
  return STREAM_TYPES.has(msg.type) && Number.isFinite(msg.seq);
}

/** ISO-8601 / Unix-seconds / Unix-ms to epoch milliseconds, or NaN. */
export function toEpochMs(value: unknown): number {
  if (typeof value === 'number') return value < 1e11 ? value * SECOND_MS : value;
  if (typeof value === 'string') return Date.parse(value);
  return NaN;
}

/**
 * A `metrics_update` as a flat sample: `{t, seq, host, values, recovered}`.
 * Non-numeric metric values are dropped (the protocol leaves out rates it
 * cannot compute rather than sending false zeros; we do the same with junk).
 */
export function toSample(msg: Envelope): Sample | null {
  const d = (msg.data || {}) as Record<string, unknown>;
  const t = toEpochMs(d.timestamp);
  if (!Number.isFinite(t)) return null;
  const values: Record<string, number> = {};
  const metrics = d.metrics && typeof d.metrics === 'object' ? (d.metrics as Record<string, unknown>) : {};
  for (const [name, v] of Object.entries(metrics)) {
    if (typeof v === 'number' && Number.isFinite(v)) values[name] = v;
  }
  const host = typeof d.host === 'string' ? d.host : null;
  return { t, seq: msg.seq, host, values, recovered: d.recovered === true || msg.recovered === true };
}

/** A `history` reply as `{name: [{x, y}]}` sorted by x, plus its bucket size. */
export function historyToSeries(reply: Partial<HistoryData> | null | undefined): { series: Record<string, Point[]>; bucketMs: number } {
  // The reply comes off the wire: check every field rather than trust the type.
  const data = reply as Record<string, unknown> | null | undefined;
  const out: Record<string, Point[]> = {};
  const series = ((data && data.series) || {}) as Record<string, unknown>;
  for (const [name, points] of Object.entries(series)) {
    if (!Array.isArray(points)) continue;
    const pts: Point[] = [];
    for (const p of points as Array<Partial<Record<'t' | 'avg', unknown>> | null>) {
      if (p && typeof p.t === 'number' && typeof p.avg === 'number' && Number.isFinite(p.t) && Number.isFinite(p.avg)) pts.push({ x: p.t, y: p.avg });
    }
    pts.sort((a, b) => a.x - b.x);
    out[name] = pts;
  }
  const bucketMs = data?.bucket_ms;
  return { series: out, bucketMs: typeof bucketMs === 'number' && Number.isFinite(bucketMs) ? bucketMs : 0 };
}

/** A `history` bucket drawn as a line (avg) with its min/max band. */
export interface BandPoint {
  x: number;
  y: number;
  min: number;
  max: number;
}

export interface HistoryBands {
  series: Record<string, BandPoint[]>;
  bucketMs: number;
  tier: string | null;
}

/** A `history` reply as `{name: [{x, y: avg, min, max}]}` sorted by x (for the explorer's charts). */
export function historyToBands(reply: Partial<HistoryData> | null | undefined): HistoryBands {
  const data = reply as Record<string, unknown> | null | undefined;
  const out: Record<string, BandPoint[]> = {};
  const series = ((data && data.series) || {}) as Record<string, unknown>;
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
  for (const [name, points] of Object.entries(series)) {
    if (!Array.isArray(points)) continue;
    const pts: BandPoint[] = [];
    for (const p of points as Array<Partial<Record<'t' | 'avg' | 'min' | 'max', unknown>> | null>) {
      if (!p || !num(p.t) || !num(p.avg)) continue;
      pts.push({ x: p.t, y: p.avg, min: num(p.min) ? p.min : p.avg, max: num(p.max) ? p.max : p.avg });
    }
    pts.sort((a, b) => a.x - b.x);
    out[name] = pts;
  }
  const bucketMs = data?.bucket_ms;
  const tier = data?.tier;
  return {
    series: out,
    bucketMs: typeof bucketMs === 'number' && Number.isFinite(bucketMs) ? bucketMs : 0,
    tier: typeof tier === 'string' ? tier : null,
  };
}
