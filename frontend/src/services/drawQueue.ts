// Spreads chart redraws over animation frames. After a zoom or pan the five
// charts' `history` replies often land in the same task or frame; redrawing
// them all there (a Chart.js update each) made one long frame. Queued, each
// frame runs redraws until its budget is spent (always at least one), and
// the rest wait for the next frame. A newer redraw of the same chart
// replaces its pending one.

/** Work per frame before the remaining redraws wait for the next frame. */
export const DRAW_BUDGET_MS = 8;

export interface DrawQueue {
  /** Runs `fn` in a coming frame; replaces what `key` had pending. */
  schedule(key: object, fn: () => void): void;
  /** Forgets what `key` had pending (an unmounted chart). */
  cancel(key: object): void;
  /** Redraws waiting for a frame. */
  pending(): number;
}

export interface DrawQueueOptions {
  budgetMs?: number;
  now?: () => number;
  requestFrame?: (fn: () => void) => void;
}

const nextFrame = (fn: () => void): void => {
  if (typeof requestAnimationFrame === 'function') requestAnimationFrame(() => fn());
  else setTimeout(fn, 16);
};

export function createDrawQueue({ budgetMs = DRAW_BUDGET_MS, now = () => performance.now(), requestFrame = nextFrame }: DrawQueueOptions = {}): DrawQueue {
  // A Map keeps insertion order: the chart whose reply came first draws first.
  const queue = new Map<object, () => void>();
  let requested = false;
  const run = () => {
    requested = false;
    const start = now();
    for (const [key, fn] of queue) {
      queue.delete(key);
      fn();
      if (now() - start >= budgetMs) break;
    }
    if (queue.size) request();
  };
  const request = () => {
    if (requested) return;
    requested = true;
    requestFrame(run);
  };
  return {
    schedule(key, fn) {
      queue.delete(key);
      queue.set(key, fn);
      request();
    },
    cancel(key) {
      queue.delete(key);
    },
    pending: () => queue.size,
  };
}
