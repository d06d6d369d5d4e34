import { cleanup, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import NotificationsPanel, { notificationsReducer } from '../NotificationsPanel';

afterEach(cleanup);

describe('a silenced alert in the notifications panel', () => {
  it('is listed, marked silenced; an unsilenced one is not marked', () => {
    const items = notificationsReducer([], {
      type: 'add',
      items: [
        { id: 'n1', level: 'critical', title: 'cpu_usage > 90 on db1', timestamp: '2026-01-01T12:00:00.000Z', source: 'rule:cpu_high', state: 'firing', silenced: true, labels: { host: 'db1' } },
        { id: 'n2', level: 'warning', title: 'cpu_usage > 90 on web1', timestamp: '2026-01-01T12:00:01.000Z', source: 'rule:cpu_high', state: 'firing', silenced: false },
      ],
    });
    render(<NotificationsPanel items={items} canAck={false} onAck={() => {}} onRead={() => {}} pendingAcks={new Set()} now={Date.parse('2026-01-01T12:01:00Z')} />);
    const db1 = screen.getByText('cpu_usage > 90 on db1').closest('li');
    const web1 = screen.getByText('cpu_usage > 90 on web1').closest('li');
    expect(db1?.textContent).toContain('firing · silenced');
    expect(web1?.textContent).not.toContain('silenced');
  });
});
