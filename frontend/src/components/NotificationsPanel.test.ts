import { describe, expect, it } from 'vitest';
import { MAX_NOTIFICATIONS, notificationsReducer, unreadCount, type WireNotification } from './NotificationsPanel';

const n = (id: string, extra: Partial<WireNotification> = {}): WireNotification => ({ id, level: 'warning', title: `t${id}`, message: 'm', timestamp: new Date(1_700_000_000_000 + Number(id) * 1000).toISOString(), ...extra });

describe('notificationsReducer', () => {
  it('adds newest first, unread when live and read when loaded', () => {
    let s = notificationsReducer([], { type: 'add', items: [n('1'), n('2')], read: true });
    s = notificationsReducer(s, { type: 'add', items: [n('3')], read: false });
    expect(s.map((x) => x.id)).toEqual(['3', '2', '1']);
    expect(unreadCount(s)).toBe(1);
  });

  it('does not duplicate a re-delivered notification and keeps what was known', () => {
    let s = notificationsReducer([], { type: 'add', items: [n('1')], read: false });
    s = notificationsReducer(s, { type: 'ack', id: '1', by: 'bob', at: '2026-11-26T10:00:00.000Z' });
    s = notificationsReducer(s, { type: 'add', items: [n('1')], read: false });
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ acknowledgedBy: 'bob', read: true });
  });

  it('normalises unknown levels and is bounded', () => {
    const items = Array.from({ length: MAX_NOTIFICATIONS + 50 }, (_, i) => n(String(i), { level: 'weird' }));
    const s = notificationsReducer([], { type: 'add', items, read: false });
    expect(s).toHaveLength(MAX_NOTIFICATIONS);
    expect(s[0].id).toBe(String(MAX_NOTIFICATIONS + 49));
    expect(s[0].level).toBe('info');
  });

  it('marks one or all as read, and ignores acks for unknown ids', () => {
    let s = notificationsReducer([], { type: 'add', items: [n('1'), n('2')], read: false });
    s = notificationsReducer(s, { type: 'read', id: '1' });
    expect(unreadCount(s)).toBe(1);
    s = notificationsReducer(s, { type: 'read' });
    expect(unreadCount(s)).toBe(0);
    expect(notificationsReducer(s, { type: 'ack', id: 'nope' })).toBe(s);
  });
});
