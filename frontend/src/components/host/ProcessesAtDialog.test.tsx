// The look-back dialog: asks processes_at for the moment clicked, shows the
// nearest table kept, re-asks for another order, says when nothing was kept,
// and closes on Escape.
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ProtocolError } from '../../connection/DashboardConnection';
import ProcessesAtDialog from './ProcessesAtDialog';
import { T0, processesFrame } from './hostFrames.fixture';
import { timeAtClick } from './chartClick';

afterEach(() => cleanup());

describe('ProcessesAtDialog', () => {
  it('asks for the table nearest the moment and shows it', async () => {
    const send = vi.fn(() => Promise.resolve(processesFrame({ t: T0 - 1000 }).data as unknown as Record<string, unknown>));
    render(<ProcessesAtDialog time={T0} send={send} host="web-1" onClose={() => {}} />);
    expect(send).toHaveBeenCalledWith('processes_at', { time: '2026-12-07T15:00:00.000Z', sort: 'cpu', host: 'web-1' });
    await waitFor(() => expect(screen.getByTestId('processes-at-table')).toBeTruthy());
    const rows = within(screen.getByTestId('processes-at-table')).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getByRole('rowheader').textContent)).toEqual(['postgres', 'systemd', 'python3']);
    expect(screen.getByTestId('processes-at-snapshot').textContent).toContain('312 processes');
    expect(screen.getByRole('dialog')).toBe(document.activeElement);
  });

  it('re-asks for the memory top N', async () => {
    const send = vi.fn(() => Promise.resolve(processesFrame().data as unknown as Record<string, unknown>));
    render(<ProcessesAtDialog time={T0} send={send} onClose={() => {}} />);
    await waitFor(() => expect(screen.getByTestId('processes-at-table')).toBeTruthy());
    fireEvent.click(screen.getByRole('button', { name: 'Memory' }));
    expect(send).toHaveBeenLastCalledWith('processes_at', { time: '2026-12-07T15:00:00.000Z', sort: 'memory' });
    await waitFor(() => expect(screen.getByRole('columnheader', { name: /Mem %/ }).getAttribute('aria-sort')).toBe('descending'));
  });

  it('says so when the table kept has no CPU figures yet (the first reading)', async () => {
    const data = processesFrame().data;
    const first = { ...data, processes: data.processes.map((p) => ({ ...p, cpu_percent: null })) };
    render(<ProcessesAtDialog time={T0} send={() => Promise.resolve(first as unknown as Record<string, unknown>)} onClose={() => {}} />);
    await waitFor(() => expect(screen.getByTestId('processes-at-snapshot').textContent).toContain('CPU not measured yet'));
  });

  it('says when no table was kept near that moment', async () => {
    const send = vi.fn(() => Promise.reject(new ProtocolError({ code: 'not_found', message: 'no snapshot' })));
    render(<ProcessesAtDialog time={T0} send={send} onClose={() => {}} />);
    await waitFor(() => expect(screen.getByTestId('processes-at-message').textContent).toContain('No process table was kept near'));
  });

  it('closes on Escape and on the close button', () => {
    const onClose = vi.fn();
    render(<ProcessesAtDialog time={T0} send={() => new Promise(() => {})} onClose={onClose} />);
    act(() => {
      document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }));
    });
    fireEvent.click(screen.getByRole('button', { name: 'Close' }));
    expect(onClose).toHaveBeenCalledTimes(2);
  });
});

describe('timeAtClick', () => {
  it("turns a click's x into the time on the chart's axis", () => {
    const chart = { scales: { x: { getValueForPixel: (px: number) => T0 + px * 1000.4 } } };
    const event = { clientX: 130, currentTarget: { getBoundingClientRect: () => ({ left: 30 }) } };
    expect(timeAtClick(chart, event)).toBe(T0 + 100_040);
    expect(timeAtClick(null, event)).toBeNull();
    expect(timeAtClick({ scales: { x: { getValueForPixel: () => undefined } } }, event)).toBeNull();
  });
});
