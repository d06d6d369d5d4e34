// Reconnect policy: capped exponential back-off with jitter (shorter cap
// while someone looks at the tab) and, between attempts, a cheap health probe
// that retries the moment the daemon answers. Owns the retry and probe timers.
import { RECONNECT_MAX_MS, backoffDelay } from '../services/backoff';
import { SECOND_MS } from '../services/constants';

/** Back-off cap while the tab is visible (hidden tabs keep RECONNECT_MAX_MS). */
export const RECONNECT_VISIBLE_MAX_MS = 3 * SECOND_MS;
/** Between attempts, probe the daemon's health this often. */
export const HEALTH_PROBE_MS = 500;
export const HEALTH_PATH = '/api/health';

export type FetchLike = (url: string, init?: RequestInit) => Promise<{ ok: boolean } | null | undefined>;

export interface ReconnectOptions {
  random?: () => number;
  fetch?: FetchLike;
  healthUrl?: string;
}

export interface ReconnectHooks {
  /** Try to connect now. */
  retry(): void;
  /** Still waiting for a retry (not stopped, status reconnecting)? */
  stillReconnecting(): boolean;
  options(): ReconnectOptions;
}

export function isVisible(): boolean {
  return typeof document === 'undefined' || document.visibilityState !== 'hidden';
}

export class ReconnectPolicy {
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  private probing = false;

  constructor(private readonly hooks: ReconnectHooks) {}

  /** A retry is scheduled. */
  get waiting(): boolean {
    return this.retryTimer !== null;
  }

  /** The delay before attempt number `attempt` (1-based). */
  delayFor(attempt: number): number {
    const maxMs = isVisible() ? RECONNECT_VISIBLE_MAX_MS : RECONNECT_MAX_MS;
    return backoffDelay(attempt, { random: this.hooks.options().random || Math.random, maxMs });
  }

  /** Retry after `delay` ms, probing the daemon's health meanwhile. */
  schedule(delay: number): void {
    this.cancelRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.hooks.retry();
    }, delay);
    this.startProbe();
  }

  /** Cancel the scheduled retry and the probe. */
  cancel(): void {
    this.cancelRetry();
    this.stopProbe();
  }

  private cancelRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private stopProbe(): void {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  /** While waiting to retry, ask /api/health; the first answer retries at once. */
  private startProbe(): void {
    const options = this.hooks.options();
    const fetchFn: FetchLike | null = options.fetch || (typeof fetch === 'function' ? (fetch as FetchLike) : null);
    if (!fetchFn || this.probeTimer !== null) return;
    const url = options.healthUrl || HEALTH_PATH;
    const pending = () => this.hooks.stillReconnecting() && this.retryTimer !== null;
    const tick = async () => {
      this.probeTimer = null;
      if (!pending()) return;
      if (!this.probing) {
        this.probing = true;
        let ok = false;
        try {
          const res = await fetchFn(url, { cache: 'no-store', credentials: 'same-origin' });
          ok = Boolean(res && res.ok);
        } catch {
          ok = false;
        } finally {
          this.probing = false;
        }
        if (ok && pending()) {
          this.hooks.retry();
          return;
        }
      }
      if (this.retryTimer !== null) this.probeTimer = setTimeout(tick, HEALTH_PROBE_MS);
    };
    this.probeTimer = setTimeout(tick, HEALTH_PROBE_MS);
  }
}
