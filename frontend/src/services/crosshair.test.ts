import { describe, expect, it } from 'vitest';
import { createCrosshair } from './crosshair';

describe('crosshair', () => {
  it('tells every chart the newest time once per frame', () => {
    const frames: Array<() => void> = [];
    const crosshair = createCrosshair((fn) => frames.push(fn));
    const a: Array<number | null> = [];
    const b: Array<number | null> = [];
    crosshair.subscribe((t) => a.push(t));
    const stop = crosshair.subscribe((t) => b.push(t));
    crosshair.set(10);
    crosshair.set(20);
    expect(frames).toHaveLength(1);
    frames.shift()!();
    expect(a).toEqual([20]);
    expect(b).toEqual([20]);
    stop();
    crosshair.set(null);
    frames.shift()!();
    expect(a).toEqual([20, null]);
    expect(b).toEqual([20]);
    expect(crosshair.get()).toBeNull();
  });
});
