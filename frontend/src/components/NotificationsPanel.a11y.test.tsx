// Keyboard users can skip the list of Acknowledge buttons (issue 16 item 8),
// and only items that still need it offer Acknowledge (item 4).
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import NotificationsPanel, { needsAck, type FeedItem } from './NotificationsPanel';

afterEach(cleanup);

const item = (i: number, extra: Partial<FeedItem> = {}): FeedItem => ({
  id: `n-${i}`, level: 'critical', title: `alert ${i}`, message: '', timestamp: 1_700_000_000_000 - i, source: 'rule:x', state: 'firing',
  silenced: false, read: false, acknowledgedBy: null, acknowledgedAt: null, ...extra,
});

describe('NotificationsPanel accessibility', () => {
  it('offers a skip link past the list that moves focus after it', () => {
    render(<NotificationsPanel items={[1, 2, 3, 4, 5].map((i) => item(i))} canAck onAck={() => {}} onRead={() => {}} pendingAcks={new Set()} now={1_700_000_000_000} />);
    expect(screen.getAllByRole('button', { name: /^Acknowledge/ })).toHaveLength(5);
    const skip = screen.getByRole('link', { name: 'Skip the notification list' });
    fireEvent.click(skip);
    expect(document.activeElement?.id).toBe('notifications-end');
  });

  it('asks for acknowledgement only for open warnings and criticals', () => {
    expect(needsAck(item(1), null)).toBe(true);
    expect(needsAck(item(1, { level: 'info' }), null)).toBe(false);
    expect(needsAck(item(1, { acknowledgedBy: 'bob' }), null)).toBe(false);
    expect(needsAck(item(1), new Set())).toBe(false); // no longer firing: resolved
    expect(needsAck(item(1), new Set(['n-1']))).toBe(true);
  });
});
