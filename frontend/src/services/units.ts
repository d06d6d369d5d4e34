// Numbers that read right (issue 16 item 6): byte-rate axes tick at round
// values in one unit per axis (binary: KiB/MiB, or decimal bits for network
// when the user picks bits/s), percentage sparklines get a minimum span, and
// trend arrows are coloured only when a threshold says the value is bad.

export interface RateScale {
  base: number;
  units: readonly string[];
}

export const BINARY: RateScale = { base: 1024, units: ['B/s', 'KiB/s', 'MiB/s', 'GiB/s', 'TiB/s'] };
export const BITS: RateScale = { base: 1000, units: ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'] };
/** Network units the user can choose (stored in localStorage). */
export const NETWORK_UNITS = [
  { id: 'bytes', label: 'bytes/s' },
  { id: 'bits', label: 'bits/s' },
];
/** A percentage sparkline spans at least this many points (24.1 → 24.0 % is no cliff). */
export const PERCENT_MIN_SPAN = 10;
const NICE_STEPS = [1, 2, 2.5, 5, 10];

function scaleFor(unit: string): RateScale {
  return unit === 'bit/s' ? BITS : BINARY;
}

/** Raw value (bytes/s) to the chart's unit: bits/s multiply by 8. */
export function toDisplay(value: number, unit: string): number {
  return unit === 'bit/s' ? value * 8 : value;
}

/** The prefix (power of the base) used for the whole axis, chosen by its largest value. */
export function axisPower(maxValue: number, unit: string): number {
  const { base, units } = scaleFor(unit);
  let k = 0;
  let v = Math.abs(maxValue);
  while (v >= base && k < units.length - 1) {
    v /= base;
    k += 1;
  }
  return k;
}

/**
 * Round ticks from 0 to at least `max` for a rate axis: a 1/2/2.5/5×10ⁿ step
 * in the axis unit (95.4 MiB/s of data ticks 0, 20, 40 … 100 MiB/s).
 */
export interface RateAxis {
  ticks: number[];
  unit: string;
  scale: number;
}

export function rateTicks(max: number, unit: string, maxTicks = 6): RateAxis {
  const { base, units } = scaleFor(unit);
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const k = axisPower(top, unit);
  const scale = base ** k;
  const scaled = top / scale;
  const raw = scaled / Math.max(1, maxTicks - 1);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = (NICE_STEPS.find((s) => s * mag >= raw) ?? 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= scaled + step * 1e-9 || ticks.length < 2; v += step) ticks.push(Math.round(v / step) * step * scale);
  if (ticks[ticks.length - 1] < top) ticks.push(ticks[ticks.length - 1] + step * scale);
  return { ticks, unit: units[k], scale };
}

/** A tick label in the axis's own unit: "40 MiB/s", "2.5 Mbit/s". */
export function formatRateTick(value: number, axis: Pick<RateAxis, 'unit' | 'scale'>): string {
  const v = value / axis.scale;
  const text = Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  return `${text} ${axis.unit}`;
}

/** A single value in its own best unit: "976 B/s", "1.00 KiB/s", "8.39 Mbit/s". */
export function formatRate(value: number | null | undefined, unit = 'B/s'): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '—';
  const { base, units } = scaleFor(unit);
  const shown = toDisplay(value, unit);
  let k = 0;
  let v = Math.abs(shown);
  // Switch prefix at 1000 even in binary, so "1000 B/s" reads "0.98 KiB/s".
  while (v >= 1000 && k < units.length - 1) {
    v /= base;
    k += 1;
  }
  const signed = Math.sign(shown) * v;
  const digits = k === 0 ? 0 : v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${signed.toFixed(digits)} ${units[k]}`;
}

/** The y range a sparkline draws: its data, widened to a minimum span for percentages. */
export function sparkRange(lo: number, hi: number, unit: string): { lo: number; hi: number } {
  if (unit !== '%') return { lo, hi: hi - lo ? hi : lo + 1 };
  if (hi - lo >= PERCENT_MIN_SPAN) return { lo, hi };
  const mid = (lo + hi) / 2;
  let a = mid - PERCENT_MIN_SPAN / 2;
  let b = mid + PERCENT_MIN_SPAN / 2;
  if (a < 0) [a, b] = [0, PERCENT_MIN_SPAN];
  if (b > 100) [a, b] = [100 - PERCENT_MIN_SPAN, 100];
  return { lo: a, hi: b };
}

/**
 * The arrow's colour class: neutral unless the metric has a threshold and the
 * trend heads into it ("bad" when rising at warn/crit, "good" when falling from it).
 */
export function trendTone(trend: 'up' | 'down' | 'flat' | string, level: string, hasThreshold: boolean): 'neutral' | 'bad' | 'good' {
  if (!hasThreshold || trend === 'flat') return 'neutral';
  if (level === 'ok') return 'neutral';
  return trend === 'up' ? 'bad' : 'good';
}
