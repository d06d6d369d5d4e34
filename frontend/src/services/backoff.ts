// Reconnect policy: exponential back-off with equal jitter.
import { SECOND_MS } from './constants';

export const RECONNECT_BASE_MS = 500;
export const RECONNECT_MAX_MS = 30 * SECOND_MS;

export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  random?: () => number;
}

/**
 * Exponential back-off with "equal jitter": attempt 1 waits 0.5–1 × base,
 * each further attempt doubles, capped at `maxMs`. `random` is injectable.
 */
export function backoffDelay(
  attempt: number,
  { baseMs = RECONNECT_BASE_MS, maxMs = RECONNECT_MAX_MS, random = Math.random }: BackoffOptions = {},
): number {
  const n = Math.max(1, attempt);
  const ceiling = Math.min(maxMs, baseMs * 2 ** (n - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
