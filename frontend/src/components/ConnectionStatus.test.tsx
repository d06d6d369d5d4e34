import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { INITIAL_VIEW, type ConnectionView } from '../connection/DashboardConnection';
import type { Point } from '../protocol/types';
import ConnectionStatus, { describeConnection } from './ConnectionStatus';
import { trendOf } from './MetricTile';

/** A connection view: the initial one with these fields changed. */
const view = (fields: Partial<ConnectionView>): ConnectionView => ({ ...INITIAL_VIEW, ...fields });

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe('ConnectionStatus', () => {
  it('describes each state', () => {
    // What arrives (0.4 updates/s), not every frame (2 msg/s with pongs and acks).
    expect(describeConnection(view({ status: 'connected', latencyMs: 12.4, messagesPerSecond: 2, updatesPerSecond: 0.4 }), null)).toBe('12 ms · 0.4 updates/s');
    expect(describeConnection(view({ status: 'connected', latencyMs: null, messagesPerSecond: 0 }), null)).toBe('0.0 updates/s');
    expect(describeConnection(view({ status: 'reconnecting', attempt: 3 }), 4)).toBe('attempt 3, next try in 4 s');
    expect(describeConnection(view({ status: 'reconnecting', attempt: 3 }), null)).toBe('attempt 3, connecting now');
    expect(describeConnection(view({ status: 'offline' }), null)).toMatch(/offline/);
    expect(describeConnection(view({ status: 'unauthorized' }), null)).toMatch(/sign in/);
  });

  it('counts down to the next reconnect attempt and exposes the state for tests', () => {
    vi.useFakeTimers();
    const retryAt = Date.now() + 3000;
    const onRetry = vi.fn();
    render(<ConnectionStatus view={view({ status: 'reconnecting', attempt: 2, retryAt })} onRetry={onRetry} />);
    const el = screen.getByTestId('connection-status');
    expect(el.dataset.state).toBe('reconnecting');
    expect(el.getAttribute('role')).toBe('status');
    expect(el.textContent).toMatch(/next try in 3 s/);
    act(() => vi.advanceTimersByTime(1000));
    expect(el.textContent).toMatch(/next try in 2 s/);
    act(() => screen.getByRole('button', { name: 'Retry now' }).click());
    expect(onRetry).toHaveBeenCalled();
  });
});

describe('trendOf', () => {
  const pts = (ys: number[]): Point[] => ys.map((y, x) => ({ x, y }));
  it('reads rising, falling and steady series', () => {
    expect(trendOf(pts([1, 1, 1, 1, 5, 6, 7]))).toBe('up');
    expect(trendOf(pts([9, 9, 9, 9, 2, 1, 1]))).toBe('down');
    expect(trendOf(pts([5, 5, 5, 5, 5, 5]))).toBe('flat');
    expect(trendOf(pts([1, 2]))).toBe('flat');
  });
});
