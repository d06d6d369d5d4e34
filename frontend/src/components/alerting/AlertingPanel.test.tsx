import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AlertingApi, Channel, ChannelsReply, DeliveriesReply, DeliveryOutcome, Silence, TimelineEvent } from '../../services/alertingApi';
import AlertingPanel from './AlertingPanel';

afterEach(cleanup);

const T = Date.UTC(2026, 0, 1, 12, 0, 0);
const SILENCE: Silence = { id: 's-1', state: 'active', matchers: [{ name: 'host', op: '=', value: 'db1' }],
  ends_at_ms: T + 3600_000, created_by: 'olga', comment: 'disk swap' };

const MAIL: Channel = {
  name: 'mail', kind: 'email', host: 'smtp.example', port: 587, to: ['a@example.com'], source: 'api', headers: [], secrets: { password: true },
};

function fakeApi(overrides: Partial<AlertingApi> = {}) {
  return {
    channels: vi.fn(async (): Promise<ChannelsReply> => ({
      channels: [
        { name: 'ops-hook', kind: 'webhook', format: 'slack', url: 'https://hooks.example/x', source: 'config', headers: ['Authorization'], secrets: {} },
        MAIL,
      ],
      routes: [{ name: 'pager', matchers: ['severity=critical'], level: 'critical', channels: ['mail'],
        group_by: ['alertname', 'host'], group_wait: 30, group_interval: 300, repeat_interval: 14400, stop: true }],
    })),
    testChannel: vi.fn(async (name: string): Promise<{ result: DeliveryOutcome }> => ({ result: name === 'mail'
      ? { ok: false, detail: 'connection refused' } : { ok: true, detail: 'HTTP 200: ok', status: 200 } })),
    saveChannel: vi.fn(async (name: string, _data: object) => ({ channel: { ...MAIL, name } })),
    deleteChannel: vi.fn(async (_name: string) => null),
    deliveries: vi.fn(async (): Promise<DeliveriesReply> => ({
      deliveries: [{ id: 7, channel: 'ops-hook', status: 'dead', attempts: 2, alerts: 3, title_status: 'firing', kind: 'notify',
        created_at_ms: T, last_error: 'HTTP 500: boom', log: [{ ts_ms: T, node: 'n1', ok: false, detail: 'HTTP 500: boom', duration_ms: 12 }] }],
      counts: { dead: 1 },
    })),
    silences: vi.fn(async (): Promise<{ silences: Silence[] }> => ({ silences: [SILENCE] })),
    createSilence: vi.fn(async (_data: object) => ({ silence: SILENCE })),
    expireSilence: vi.fn(async (_id: string) => null),
    timeline: vi.fn(async (_from: number, _to: number): Promise<{ events: TimelineEvent[] }> => ({ events: [
      { event_key: 'a', ts_ms: T, state: 'firing', level: 'critical', labels: { alertname: 'cpu_high', host: 'db1' }, summary: 'cpu high', silenced_by: 's-1' },
      { event_key: 'b', ts_ms: T - 1000, state: 'firing', level: 'warning', labels: { alertname: 'cpu_high', host: 'web1' }, summary: 'cpu high', silenced_by: null },
    ] })),
    ...overrides,
  } satisfies AlertingApi;
}

describe('AlertingPanel', () => {
  it("lets an admin send a test and shows each receiver's answer", async () => {
    const api = fakeApi();
    render(<AlertingPanel api={api} role="admin" />);
    fireEvent.click(await screen.findByRole('button', { name: 'Send a test to ops-hook' }));
    expect(await screen.findByText('✓ HTTP 200: ok', { exact: false })).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Send a test to mail' }));
    expect(await screen.findByText('connection refused', { exact: false })).toBeTruthy();
    expect(api.testChannel).toHaveBeenCalledWith('mail');
  });

  it('shows the routes an admin configured in the INI file', async () => {
    render(<AlertingPanel api={fakeApi()} role="admin" />);
    const row = (await screen.findByText('pager (stop)')).closest('tr');
    expect(row?.textContent).toContain('severity=critical, level ≥ critical');
    expect(row?.textContent).toContain('by alertname, host; wait 30 s, interval 300 s, repeat 14400 s');
  });

  it('shows secrets only as set, and INI channels without edit or delete', async () => {
    render(<AlertingPanel api={fakeApi()} role="admin" />);
    expect(await screen.findByText('Authorization: set')).toBeTruthy();
    expect(screen.getByText('password: set')).toBeTruthy();
    expect(screen.queryByRole('button', { name: 'Edit ops-hook' })).toBeNull();
    expect(screen.getByRole('button', { name: 'Edit mail' })).toBeTruthy();
  });

  it('saves a new webhook channel and shows the daemon\'s reason when it is refused', async () => {
    const api = fakeApi({ saveChannel: vi.fn(async () => { throw new Error('channel team: refused target'); }) });
    render(<AlertingPanel api={api} role="admin" />);
    const form = await screen.findByRole('form', { name: 'Add or change a channel' });
    fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'team' } });
    fireEvent.change(within(form).getByLabelText('URL'), { target: { value: 'https://hooks.slack.example/T1' } });
    fireEvent.change(within(form).getByLabelText('Header 1 name'), { target: { value: 'Authorization' } });
    fireEvent.change(within(form).getByLabelText('Header 1 value'), { target: { value: 'Bearer xyz' } });
    fireEvent.click(within(form).getByRole('button', { name: 'Save channel' }));
    expect(await within(form).findByRole('alert')).toHaveProperty('textContent', 'channel team: refused target');
    expect(api.saveChannel).toHaveBeenCalledWith('team', { kind: 'webhook', timeout: 10, url: 'https://hooks.slack.example/T1',
      format: 'slack', headers: { Authorization: 'Bearer xyz' } });
  });

  it('shows the delivery log with each attempt to operators', async () => {
    render(<AlertingPanel api={fakeApi()} role="operator" />);
    expect(await screen.findByText('dead')).toBeTruthy();
    expect(screen.getByText('n1: HTTP 500: boom', { exact: false })).toBeTruthy();
    expect(screen.queryByText('Alert channels')).toBeNull();
  });

  it('lets an operator create a silence', async () => {
    const api = fakeApi();
    render(<AlertingPanel api={api} role="operator" />);
    const form = await screen.findByRole('form', { name: 'Create a silence' });
    fireEvent.change(within(form).getByLabelText('Matcher 1 value'), { target: { value: 'db1' } });
    fireEvent.change(within(form).getByLabelText('Comment'), { target: { value: 'disk swap' } });
    fireEvent.click(within(form).getByRole('button', { name: 'Silence' }));
    await waitFor(() => expect(api.createSilence).toHaveBeenCalledWith({
      matchers: [{ name: 'host', op: '=', value: 'db1' }], duration_s: 7200, comment: 'disk swap' }));
  });

  it('shows viewers silences and the timeline with silenced alerts marked, nothing else', async () => {
    render(<AlertingPanel api={fakeApi()} role="viewer" />);
    const items = await screen.findAllByRole('listitem');
    const timeline = items.filter((li) => li.className.startsWith('timeline-event'));
    expect(timeline.map((li) => li.textContent.includes('silenced'))).toEqual([true, false]);
    expect(screen.getByText('disk swap', { exact: false })).toBeTruthy();
    expect(screen.queryByRole('form', { name: 'Create a silence' })).toBeNull();
    expect(screen.queryByText('Delivery log')).toBeNull();
    expect(screen.queryByText('Alert channels')).toBeNull();
  });
});
