// Message queue: incoming messages never touch React state one by one. They
// are buffered here and handed over as one batch at most once per animation
// frame (or once per FLUSH_FALLBACK_MS while the tab is hidden and animation
// frames stop).
import { SECOND_MS } from '../services/constants';

/** Flush fallback while requestAnimationFrame is paused (hidden tab). */
export const FLUSH_FALLBACK_MS = 1 * SECOND_MS;

/** Runs `cb` once, later; returns a cancel function. */
export type ScheduleFrame = (cb: () => void) => () => void;

/** rAF with a timer fallback: whichever fires first runs `cb`, once. */
export const scheduleAnimationFrame: ScheduleFrame = (cb) => {
  let done = false;
  let raf = 0;
  const run = () => {
    if (done) return;
    done = true;
    if (raf && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(raf);
    clearTimeout(timer);
    cb();
  };
  const timer = setTimeout(run, FLUSH_FALLBACK_MS);
  if (typeof requestAnimationFrame === 'function') raf = requestAnimationFrame(run);
  return () => {
    done = true;
    if (raf && typeof cancelAnimationFrame === 'function') cancelAnimationFrame(raf);
    clearTimeout(timer);
  };
};

export class MessageQueue<M> {
  private buffer: M[] = [];
  private cancelFlush: (() => void) | null = null;

  /**
   * `deliver` gets each batch; `scheduler` is read at every enqueue so a test
   * (or the options ref) can swap it.
   */
  constructor(
    private readonly deliver: (batch: M[]) => void,
    private readonly scheduler: () => ScheduleFrame | undefined,
  ) {}

  push(msg: M): void {
    this.buffer.push(msg);
    if (this.cancelFlush) return;
    const schedule = this.scheduler() || scheduleAnimationFrame;
    this.cancelFlush = schedule(() => this.flush());
  }

  flush(): void {
    this.cancelFlush = null;
    if (!this.buffer.length) return;
    const batch = this.buffer;
    this.buffer = [];
    this.deliver(batch);
  }

  /** Drop what is buffered and any scheduled flush. */
  clear(): void {
    if (this.cancelFlush) this.cancelFlush();
    this.cancelFlush = null;
    this.buffer = [];
  }
}
