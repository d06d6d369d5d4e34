// The shared crosshair: the time under the pointer on any chart, which every
// chart draws as a vertical line with its own values at that moment. Kept
// outside React state so hovering redraws the charts, not the page.

export interface Crosshair {
  get(): number | null;
  /** The time under the pointer (ms), or null when it left the charts. */
  set(t: number | null): void;
  subscribe(fn: (t: number | null) => void): () => void;
}

export function createCrosshair(schedule: (fn: () => void) => void = (fn) => requestAnimationFrame(() => fn())): Crosshair {
  let current: number | null = null;
  let pending = false;
  const listeners = new Set<(t: number | null) => void>();
  const flush = () => {
    pending = false;
    for (const fn of listeners) fn(current);
  };
  return {
    get: () => current,
    set(t) {
      if (t === current) return;
      current = t;
      // Pointer moves come faster than frames: one redraw of the charts per frame.
      if (!pending) {
        pending = true;
        schedule(flush);
      }
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}
