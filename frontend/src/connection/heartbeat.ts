// Heartbeat: application pings for the round-trip latency and to detect a
// half-open connection, plus the message and live-update rates of the
// status pill. Owns its two interval timers.
import { SECOND_MS } from '../services/constants';

export const PING_INTERVAL_MS = 5 * SECOND_MS;
export const PONG_TIMEOUT_MS = 10 * SECOND_MS;
export const STATS_INTERVAL_MS = 1 * SECOND_MS;
/** The status pill's updates/s counts live metrics updates over this window. */
export const RATE_WINDOW_MS = 10 * SECOND_MS;

export interface HeartbeatHooks {
  /** Send `ping` with this correlation id and client time. */
  sendPing(id: string, sentAt: number): void;
  /** A fresh correlation id. */
  nextId(): string;
  /** The pong did not come within PONG_TIMEOUT_MS: drop the connection. */
  onTimeout(): void;
  onLatency(ms: number): void;
  onStats(stats: { messagesPerSecond: number; updatesPerSecond: number }): void;
}

export class Heartbeat {
  private ping: { id: string; sentAt: number } | null = null;
  private msgCount = 0;
  private updateTimes: number[] = [];
  private connectedAt: number | null = null;
  private statsSince = 0;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly hooks: HeartbeatHooks) {}

  /** Connected: reset the counters, ping now and then every PING_INTERVAL_MS. */
  start(): void {
    this.stop();
    this.msgCount = 0;
    this.updateTimes = [];
    this.connectedAt = Date.now();
    this.statsSince = Date.now();
    this.sendPing();
    this.pingTimer = setInterval(() => this.sendPing(), PING_INTERVAL_MS);
    this.statsTimer = setInterval(() => this.updateStats(), STATS_INTERVAL_MS);
  }

  stop(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.pingTimer = null;
    this.statsTimer = null;
    this.ping = null;
  }

  countMessage(): void {
    this.msgCount += 1;
  }

  countLiveUpdate(): void {
    this.updateTimes.push(Date.now());
  }

  /** A pong arrived; true when it answers our outstanding ping. */
  onPong(id: string | null | undefined): boolean {
    if (!this.ping || id !== this.ping.id) return false;
    this.hooks.onLatency(Math.max(0, Date.now() - this.ping.sentAt));
    this.ping = null;
    return true;
  }

  private sendPing(): void {
    if (this.ping && Date.now() - this.ping.sentAt >= PONG_TIMEOUT_MS) {
      // The peer stopped answering: a half-open TCP connection can take
      // minutes to close by itself, so drop it and reconnect now.
      this.hooks.onTimeout();
      return;
    }
    if (this.ping) return; // one outstanding ping at a time
    const id = this.hooks.nextId();
    this.ping = { id, sentAt: Date.now() };
    this.hooks.sendPing(id, this.ping.sentAt);
  }

  private updateStats(): void {
    const now = Date.now();
    const elapsed = Math.max(1, now - this.statsSince);
    const rate = Math.round((this.msgCount * SECOND_MS * 10) / elapsed) / 10;
    // What actually arrives: live metrics updates per second over the last
    // RATE_WINDOW_MS (a 0.4/s stream reads 0.4, not 0 or 1; replays excluded).
    const since = now - RATE_WINDOW_MS;
    while (this.updateTimes.length && this.updateTimes[0] < since) this.updateTimes.shift();
    const span = Math.max(SECOND_MS, Math.min(RATE_WINDOW_MS, now - (this.connectedAt ?? now)));
    const updates = Math.round(((this.updateTimes.length * SECOND_MS) / span) * 100) / 100;
    this.msgCount = 0;
    this.statsSince = now;
    this.hooks.onStats({ messagesPerSecond: rate, updatesPerSecond: updates });
  }
}
