import { describe, expect, it } from 'vitest';
import { RECONNECT_MAX_MS, backoffDelay } from './backoff';

describe('backoffDelay', () => {
  it('doubles per attempt with equal jitter', () => {
    expect(backoffDelay(1, { random: () => 0 })).toBe(250);
    expect(backoffDelay(1, { random: () => 1 })).toBe(500);
    expect(backoffDelay(2, { random: () => 0 })).toBe(500);
    expect(backoffDelay(4, { random: () => 1 })).toBe(4000);
  });
  it('is capped', () => {
    expect(backoffDelay(50, { random: () => 1 })).toBe(RECONNECT_MAX_MS);
    expect(backoffDelay(50, { random: () => 0 })).toBe(RECONNECT_MAX_MS / 2);
  });
});
