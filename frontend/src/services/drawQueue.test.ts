import { describe, expect, it } from 'vitest';
import { createDrawQueue } from './drawQueue';

/** A queue whose frames run when the test says, on a clock each redraw advances by `costMs`. */
function harness(costMs: number) {
  let t = 0;
  const frames: Array<() => void> = [];
  const queue = createDrawQueue({ budgetMs: 8, now: () => t, requestFrame: (fn) => frames.push(fn) });
  const drawn: string[] = [];
  const draw = (name: string) => () => {
    drawn.push(name);
    t += costMs;
  };
  const frame = () => frames.shift()?.();
  return { queue, drawn, draw, frame, frames };
}

describe('draw queue', () => {
  it('runs redraws in later frames, within the budget, at least one per frame', () => {
    const h = harness(5);
    const keys = [{}, {}, {}, {}, {}];
    keys.forEach((k, i) => h.queue.schedule(k, h.draw(`c${i}`)));
    expect(h.drawn).toEqual([]);
    expect(h.frames).toHaveLength(1);
    h.frame();
    // 5 ms, then 10 ms: past the 8 ms budget after the second.
    expect(h.drawn).toEqual(['c0', 'c1']);
    h.frame();
    h.frame();
    expect(h.drawn).toEqual(['c0', 'c1', 'c2', 'c3', 'c4']);
    expect(h.queue.pending()).toBe(0);
    expect(h.frames).toHaveLength(0);
  });

  it('a newer redraw of a chart replaces its pending one; a cancelled chart does not draw', () => {
    const h = harness(1);
    const a = {};
    const b = {};
    h.queue.schedule(a, h.draw('a-old'));
    h.queue.schedule(b, h.draw('b'));
    h.queue.schedule(a, h.draw('a-new'));
    h.queue.cancel(b);
    h.frame();
    expect(h.drawn).toEqual(['a-new']);
  });
});
