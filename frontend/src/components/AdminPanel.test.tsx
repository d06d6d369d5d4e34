// AdminPanel: loads the interval and the rules over the socket, sends each
// change as its protocol request, asks before deleting, and shows errors.
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { RuleStatus } from '../protocol/types';
import { fakeSender, type ReplyHandlers } from '../test/fakeSender';
import AdminPanel, { clearText, stateText } from './AdminPanel';

const RULE: RuleStatus = { name: 'cpu_high', metric: 'cpu_usage', op: '>', threshold: 90, for: 30, level: 'warning', enabled: true, state: 'firing', firing: ['web-1'] };

function fakeSend(overrides: ReplyHandlers = {}) {
  return fakeSender({
    settings_get: () => ({ interval: 1 }),
    settings_set: (d) => ({ interval: d.interval }),
    rule_list: () => ({ rules: [RULE] }),
    rule_set: (d) => ({ rule: d }),
    rule_delete: (d) => ({ name: d.name }),
    broadcast: () => ({ id: 'b-1' }),
    ...overrides,
  });
}

afterEach(cleanup);

describe('AdminPanel', () => {
  it('shows the collection interval and the rules with their state', async () => {
    const send = fakeSend();
    render(<AdminPanel send={send} connected metricNames={['cpu_usage']} />);
    await waitFor(() => expect((screen.getByLabelText('Seconds between samples') as HTMLInputElement).value).toBe('1'));
    const row = await screen.findByTestId('rule-row');
    expect(within(row).getByTestId('rule-state').textContent).toBe('firing on web-1');
    expect(within(row).getByTestId('rule-clear').textContent).toBe('≤ 90');
  });

  it('asks nothing of the server while disconnected', () => {
    const send = fakeSend();
    render(<AdminPanel send={send} connected={false} metricNames={[]} />);
    expect(send).not.toHaveBeenCalled();
  });

  it('sends a new interval as a number and confirms it', async () => {
    const send = fakeSend();
    render(<AdminPanel send={send} connected metricNames={['cpu_usage']} />);
    const input = screen.getByLabelText('Seconds between samples');
    await waitFor(() => expect((input as HTMLInputElement).value).toBe('1'));
    fireEvent.change(input, { target: { value: '2.5' } });
    fireEvent.click(within(screen.getByRole('form', { name: 'Collection interval' })).getByRole('button', { name: 'Apply' }));
    expect(await screen.findByText('Collection interval set to 2.5 s.')).toBeTruthy();
    expect(send).toHaveBeenCalledWith('settings_set', { interval: 2.5 });
  });

  it('deletes a rule only after confirmation', async () => {
    const send = fakeSend();
    render(<AdminPanel send={send} connected metricNames={['cpu_usage']} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Delete rule cpu_high' }));
    expect(send).not.toHaveBeenCalledWith('rule_delete', expect.anything());
    fireEvent.click(screen.getByRole('button', { name: 'Yes, delete cpu_high' }));
    expect(await screen.findByText('Rule cpu_high deleted.')).toBeTruthy();
    expect(send).toHaveBeenCalledWith('rule_delete', { name: 'cpu_high' });
    expect(screen.queryByTestId('rule-row')).toBeNull();
  });

  it('saves a rule with its numbers as numbers, and lists it', async () => {
    const send = fakeSend({ rule_list: () => ({ rules: [] }) });
    render(<AdminPanel send={send} connected metricNames={['cpu_usage', 'memory_usage']} />);
    const form = screen.getByRole('form', { name: 'Add or replace a rule' });
    fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'mem_high' } });
    fireEvent.change(within(form).getByLabelText('Metric'), { target: { value: 'memory_usage' } });
    fireEvent.change(within(form).getByLabelText('Op'), { target: { value: '>=' } });
    fireEvent.change(within(form).getByLabelText('Threshold'), { target: { value: '95' } });
    fireEvent.change(within(form).getByLabelText('For (s)'), { target: { value: '60' } });
    fireEvent.change(within(form).getByLabelText('Clear at'), { target: { value: '90' } });
    fireEvent.change(within(form).getByLabelText('Level'), { target: { value: 'critical' } });
    fireEvent.click(within(form).getByRole('button', { name: 'Save rule' }));
    expect(await screen.findByText('Rule mem_high saved.')).toBeTruthy();
    expect(send).toHaveBeenCalledWith('rule_set', {
      name: 'mem_high', metric: 'memory_usage', op: '>=', threshold: 95, for: 60, level: 'critical', enabled: true, clear: 90,
    });
    const row = screen.getByTestId('rule-row');
    expect(row.dataset.rule).toBe('mem_high');
    expect(within(row).getByTestId('rule-clear').textContent).toBe('< 90');
    expect((within(form).getByLabelText('Name') as HTMLInputElement).value).toBe('');
  });

  it('sends no clear threshold when the field is left empty', async () => {
    const send = fakeSend();
    render(<AdminPanel send={send} connected metricNames={['cpu_usage']} />);
    const form = screen.getByRole('form', { name: 'Add or replace a rule' });
    fireEvent.change(within(form).getByLabelText('Name'), { target: { value: 'cpu_warn' } });
    fireEvent.click(within(form).getByRole('button', { name: 'Save rule' }));
    await screen.findByText('Rule cpu_warn saved.');
    expect(send.mock.calls.find(([type]) => type === 'rule_set')?.[1]).not.toHaveProperty('clear');
  });

  it('shows a refused broadcast as an alert', async () => {
    const send = fakeSend({
      broadcast: () => {
        throw new Error('forbidden: admin only');
      },
    });
    render(<AdminPanel send={send} connected metricNames={['cpu_usage']} />);
    fireEvent.change(screen.getByLabelText('Title'), { target: { value: 'Maintenance' } });
    fireEvent.click(screen.getByRole('button', { name: 'Send' }));
    expect((await screen.findByRole('alert')).textContent).toBe('forbidden: admin only');
    expect(send).toHaveBeenCalledWith('broadcast', { level: 'info', title: 'Maintenance', message: '' });
  });
});

describe('rule texts', () => {
  it('says where a rule clears, with hysteresis', () => {
    expect(clearText({ op: '>', threshold: 90, clear: 85 })).toBe('≤ 85');
    expect(clearText({ op: '<', threshold: 10 })).toBe('≥ 10');
  });

  it('says the rule state', () => {
    expect(stateText({ enabled: false })).toBe('disabled');
    expect(stateText({ pending: ['db-1'] })).toBe('pending on db-1');
    expect(stateText({ state: 'ok' })).toBe('ok');
  });
});
