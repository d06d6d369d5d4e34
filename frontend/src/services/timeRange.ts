// What the charts show, as a value: a live range (the last N, following the
// stream) or an absolute one (from/to, paused on it). Range arithmetic (zoom,
// pan, clamp), the address-bar contract of docs/dashboard-urls.md and the
// number of points a chart asks `history` for. No React, no DOM: unit-tested.

import { DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, TIME_WINDOWS } from './constants';

export const YEAR_MS = 365 * DAY_MS;
/** Zooming stops at this span: below it a chart has fewer samples than pixels to spare. */
export const MIN_SPAN_MS = 10 * SECOND_MS;
/** The default live range when the address and the preferences say nothing. */
export const DEFAULT_RANGE_ID = '5m';
/** Fewest points a chart asks for, however narrow it is (a phone). */
export const MIN_CHART_POINTS = 50;
/** Used when the server did not say its `max_history_points`. */
export const DEFAULT_MAX_POINTS = 1000;

export type LiveRange = { kind: 'live'; id: string; spanMs: number };
export type AbsoluteRange = { kind: 'absolute'; from: number; to: number };
export type ViewRange = LiveRange | AbsoluteRange;

export interface Span {
  from: number;
  to: number;
}

const UNIT_MS: Record<string, number> = { s: SECOND_MS, m: MINUTE_MS, h: HOUR_MS, d: DAY_MS, y: YEAR_MS };

/** `5m`, `24h`, `7d`, `1y`, `90s` → ms; anything else → NaN. */
export function parseDurationMs(text: string | null | undefined): number {
  const m = /^(\d+(?:\.\d+)?)([smhdy])$/.exec((text ?? '').trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]] : NaN;
}

/** A live range by id (`24h`); a listed id keeps its label, any other duration is read too. */
export function liveRange(id: string): LiveRange | null {
  const listed = TIME_WINDOWS.find((w) => w.id === id);
  if (listed) return { kind: 'live', id, spanMs: listed.ms };
  const ms = parseDurationMs(id);
  return Number.isFinite(ms) && ms > 0 ? { kind: 'live', id, spanMs: ms } : null;
}

/**
 * A time from the address: digits are Unix milliseconds, anything else
 * ISO-8601 (no zone means UTC). NaN when unreadable.
 */
export function parseTimeParam(text: string | null | undefined): number {
  const s = (text ?? '').trim();
  if (!s) return NaN;
  if (/^\d+$/.test(s)) return Number(s);
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return NaN;
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(s) || !s.includes('T') ? s : `${s}Z`;
  return Date.parse(zoned);
}

/** The from/to a range covers at `now` (ms). */
export function resolveRange(range: ViewRange, now: number): Span {
  return range.kind === 'live' ? { from: now - range.spanMs, to: now } : { from: range.from, to: range.to };
}

export function spanOf(range: ViewRange): number {
  return range.kind === 'live' ? range.spanMs : range.to - range.from;
}

/**
 * An absolute range from two chart positions (a drag, in either direction),
 * widened around its middle to MIN_SPAN_MS, kept out of the future and
 * widened to whole seconds.
 */
export function zoomTo(a: number, b: number, now: number): AbsoluteRange {
  let from = Math.min(a, b);
  let to = Math.max(a, b);
  if (to - from < MIN_SPAN_MS) {
    const mid = (from + to) / 2;
    from = mid - MIN_SPAN_MS / 2;
    to = mid + MIN_SPAN_MS / 2;
  }
  if (to > now) {
    from -= to - now;
    to = now;
  }
  // Whole seconds: the HTTP API (export) takes seconds, and the same bounds
  // must reach `history` and `/api/export` without rounding differences.
  return { kind: 'absolute', from: Math.floor(from / SECOND_MS) * SECOND_MS, to: Math.ceil(to / SECOND_MS) * SECOND_MS };
}

/**
 * The range moved by `fraction` of its span (negative: earlier). A pan never
 * goes past now: the right edge stops at now and the span is kept.
 */
export function panRange(range: ViewRange, fraction: number, now: number): AbsoluteRange {
  const { from, to } = resolveRange(range, now);
  const span = to - from;
  let shift = Math.round(span * fraction);
  if (to + shift > now) shift = now - to;
  return { kind: 'absolute', from: Math.floor((from + shift) / SECOND_MS) * SECOND_MS, to: Math.ceil((to + shift) / SECOND_MS) * SECOND_MS };
}

/** The range widened `factor` times around its middle, never past now. */
export function zoomOut(range: ViewRange, factor: number, now: number): AbsoluteRange {
  const { from, to } = resolveRange(range, now);
  const mid = (from + to) / 2;
  const half = ((to - from) * factor) / 2;
  return zoomTo(mid - half, mid + half, now);
}

/**
 * Points a chart asks `history` for: about one per pixel of its plot width,
 * at least MIN_CHART_POINTS, at most the server's `max_history_points`.
 */
export function pointCountFor(widthPx: number, maxPoints: number | null | undefined = DEFAULT_MAX_POINTS): number {
  const limit = Number.isFinite(maxPoints) && (maxPoints as number) > 0 ? (maxPoints as number) : DEFAULT_MAX_POINTS;
  const wanted = Number.isFinite(widthPx) && widthPx > 0 ? Math.round(widthPx) : MIN_CHART_POINTS;
  return Math.max(Math.min(MIN_CHART_POINTS, limit), Math.min(limit, wanted));
}

// -- the address (docs/dashboard-urls.md) ------------------------------------

export interface ViewState {
  range: ViewRange;
  /** null: the daemon's own host. */
  host: string | null;
  /** Metric names of the charts shown, in order; null: the saved selection. */
  panels: string[] | null;
}

export interface ParsedView {
  range: ViewRange | null;
  host: string | null;
  panels: string[] | null;
  /** What the address held that could not be used (shown to the user). */
  notices: string[];
}

/** Reads the view from a query string. Bad values are dropped with a notice, never thrown. */
export function readViewUrl(search: string): ParsedView {
  const q = new URLSearchParams(search);
  const notices: string[] = [];
  let range: ViewRange | null = null;
  const fromText = q.get('from');
  const toText = q.get('to');
  if (fromText !== null) {
    const from = parseTimeParam(fromText);
    const to = toText === null ? NaN : parseTimeParam(toText);
    if (!Number.isFinite(from)) notices.push(`The link's start time "${fromText}" could not be read.`);
    else if (toText !== null && !Number.isFinite(to)) notices.push(`The link's end time "${toText}" could not be read.`);
    else if (toText === null) range = { kind: 'absolute', from, to: Math.max(from + MIN_SPAN_MS, Date.now()) };
    else if (to <= from) notices.push('The link ends before it starts; showing the live view.');
    else range = { kind: 'absolute', from, to };
  }
  const rangeText = q.get('range');
  if (range === null && rangeText !== null) {
    range = liveRange(rangeText);
    if (!range) notices.push(`The link's range "${rangeText}" could not be read.`);
  }
  const host = q.get('host')?.trim() || null;
  const panelsText = q.get('panels');
  const panels = panelsText === null ? null : panelsText.split(',').map((p) => p.trim()).filter(Boolean);
  return { range, host, panels: panels && panels.length ? panels : null, notices };
}

/**
 * The canonical address of a view: `from`/`to` as integer ms, or `range`;
 * then `host` and `panels` when given. Other parameters are kept.
 */
export function writeViewUrl(view: ViewState, currentSearch = ''): string {
  const q = new URLSearchParams(currentSearch);
  for (const key of ['from', 'to', 'range', 'host', 'panels']) q.delete(key);
  if (view.range.kind === 'absolute') {
    q.set('from', String(Math.round(view.range.from)));
    q.set('to', String(Math.round(view.range.to)));
  } else {
    q.set('range', view.range.id);
  }
  if (view.host) q.set('host', view.host);
  if (view.panels && view.panels.length) q.set('panels', view.panels.join(','));
  const text = q.toString().replace(/%2C/g, ',');
  return text ? `?${text}` : '';
}

export function sameRange(a: ViewRange, b: ViewRange): boolean {
  if (a.kind === 'live' && b.kind === 'live') return a.id === b.id;
  if (a.kind === 'absolute' && b.kind === 'absolute') return a.from === b.from && a.to === b.to;
  return false;
}

// -- the picker's inputs -------------------------------------------------------

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** ms → the value of an `<input type="datetime-local">` (local time, minutes). */
export function toLocalInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** An `<input type="datetime-local">` value (local time) → ms; NaN when empty or bad. */
export function fromLocalInput(value: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) return NaN;
  return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], m[6] ? +m[6] : 0).getTime();
}

/** "last 15 min", "last 24 h", "last 7 d" for a live range. */
export function spanLabel(ms: number): string {
  if (ms >= YEAR_MS && ms % YEAR_MS === 0) return `${ms / YEAR_MS} y`;
  if (ms >= DAY_MS && ms % DAY_MS === 0) return `${ms / DAY_MS} d`;
  if (ms >= HOUR_MS && ms % HOUR_MS === 0) return `${ms / HOUR_MS} h`;
  if (ms >= MINUTE_MS) return `${Math.round(ms / MINUTE_MS)} min`;
  return `${Math.round(ms / SECOND_MS)} s`;
}
