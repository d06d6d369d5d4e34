// A tile per key metric: current value with unit, a trend sparkline, and a
// colour by threshold. The sparkline is a plain canvas drawn imperatively
// from the series store (no chart instance per tile).

import { memo, useEffect, useLayoutEffect, useRef, useState } from 'react';
import type { Point } from '../protocol/types';
import { THRESHOLDS } from '../services/constants';
import { formatAgo, formatMetricParts, levelFor, type Level } from '../services/format';
import type { Latest } from '../services/seriesStore';
import { sparkRange, trendTone } from '../services/units';

export const SPARK_POINTS = 60;
const SPARK_HEIGHT_PX = 32;
const TREND_EPSILON = 0.02; // 2 % of the recent range counts as "steady"

const LEVEL_TEXT: Record<Level, string> = { ok: 'normal', warn: 'warning', crit: 'critical' };

export type Trend = 'up' | 'down' | 'flat';

/** Trend of the last points: "up" | "down" | "flat". */
export function trendOf(points: readonly Point[]): Trend {
  if (points.length < 4) return 'flat';
  const ys = points.map((p) => p.y);
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const range = hi - lo || Math.abs(hi) || 1;
  const recent = ys.slice(-3).reduce((a, b) => a + b, 0) / 3;
  const earlier = ys.slice(0, Math.max(1, ys.length - 3));
  const before = earlier.reduce((a, b) => a + b, 0) / earlier.length;
  const delta = (recent - before) / range;
  if (delta > TREND_EPSILON * 5) return 'up';
  if (delta < -TREND_EPSILON * 5) return 'down';
  return 'flat';
}

interface SparklineProps {
  points: readonly Point[];
  color: string;
  unit: string;
  /** A step longer than this is a hole in the data, drawn as a break. */
  gapMs?: number;
}

function Sparkline({ points, color, unit, gapMs = Infinity }: SparklineProps) {
  const ref = useRef<HTMLCanvasElement>(null);
  // The canvas's CSS size, read once and then kept by a ResizeObserver:
  // reading clientWidth right after React changed the page forces a layout
  // of the whole page on every sample.
  const size = useRef<{ width: number; height: number } | null>(null);
  const [resized, setResized] = useState(0);
  useEffect(() => {
    const canvas = ref.current;
    if (!canvas || typeof ResizeObserver === 'undefined') return undefined;
    const observer = new ResizeObserver(() => {
      size.current = null;
      setResized((n) => n + 1);
    });
    observer.observe(canvas);
    return () => observer.disconnect();
  }, []);
  useLayoutEffect(() => {
    const canvas = ref.current;
    if (!canvas) return;
    const dpr = window.devicePixelRatio || 1;
    size.current ??= { width: canvas.clientWidth || 120, height: canvas.clientHeight || SPARK_HEIGHT_PX };
    const { width, height } = size.current;
    if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
    if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
    const ctx = canvas.getContext?.('2d');
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (points.length < 2) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of points) {
      if (p.y < lo) lo = p.y;
      if (p.y > hi) hi = p.y;
    }
    // Percentages get a minimum span, so 24.1 -> 24.0 % is not a cliff.
    const range = sparkRange(lo, hi, unit);
    const span = range.hi - range.lo || 1;
    const x0 = points[0].x;
    const xs = points[points.length - 1].x - x0 || 1;
    ctx.beginPath();
    points.forEach((p, i) => {
      const x = ((p.x - x0) / xs) * (width - 2) + 1;
      const y = height - 2 - ((p.y - range.lo) / span) * (height - 4);
      // A hole in the data is a break, not a diagonal.
      if (i === 0 || p.x - points[i - 1].x > gapMs) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = 'round';
    ctx.stroke();
    // Only when what it draws changed: reading the canvas size forces a layout
    // of the page, which every dashboard render (a zoom, a pan) paid for.
  }, [points, color, unit, gapMs, resized]);
  return <canvas ref={ref} className="sparkline" height={SPARK_HEIGHT_PX} aria-hidden="true" />;
}

export interface MetricTileProps {
  name: string;
  label: string;
  unit: string;
  latest: Latest | undefined;
  points: readonly Point[];
  cores?: number;
  sparkColor: string;
  stale: boolean;
  now: number;
  gapMs?: number;
}

function MetricTile({ name, label, unit, latest, points, cores, sparkColor, stale, now, gapMs }: MetricTileProps) {
  const value = latest?.value;
  const level = levelFor(name, value ?? NaN, { cores });
  const { value: text, unit: unitText } = formatMetricParts(value, unit);
  const trend = trendOf(points);
  const arrow = trend === 'up' ? '▲' : trend === 'down' ? '▼' : '▬';
  // Only a threshold makes a rise bad: elsewhere the arrow stays neutral.
  const tone = trendTone(trend, level, Boolean(THRESHOLDS[name]) || name === 'load_1');
  return (
    <article
      className={`tile tile-${level}`}
      data-testid={`tile-${name}`}
      data-level={level}
      data-value={value !== undefined && Number.isFinite(value) ? value : ''}
      aria-label={`${label}: ${text}${unitText ? ` ${unitText}` : ''}, ${LEVEL_TEXT[level]}, trend ${trend}`}
    >
      <header className="tile-head">
        <span className="tile-label">{label}</span>
        <span className={`tile-trend trend-${trend} tone-${tone}`} data-testid={`trend-${name}`} data-tone={tone} aria-hidden="true">{arrow}</span>
      </header>
      <p className="tile-value">
        <span className="tile-number">{text}</span>
        {unitText ? <span className="tile-unit">{unitText}</span> : null}
      </p>
      <Sparkline points={points} color={sparkColor} unit={unit} gapMs={gapMs} />
      <footer className="tile-foot" aria-hidden="true">{stale && latest ? `updated ${formatAgo(latest.t, now)}` : '\u00a0'}</footer>
    </article>
  );
}

export default memo(MetricTile);
