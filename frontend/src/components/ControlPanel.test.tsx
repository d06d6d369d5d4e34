// ControlPanel: every control reports the user's choice through its callback,
// and optional controls appear only when they apply.
import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import ControlPanel, { type ControlPanelProps } from './ControlPanel';

function setup(over: Partial<ControlPanelProps> = {}): ControlPanelProps {
  const props: ControlPanelProps = {
    id: 'controls',
    open: true,
    windowId: '1m',
    onWindow: vi.fn(),
    paused: false,
    onPause: vi.fn(),
    bufferedWhilePaused: 0,
    rateId: 'live',
    onRate: vi.fn(),
    effectiveHz: null,
    groups: ['cpu', 'memory'],
    onToggleGroup: vi.fn(),
    theme: 'system',
    onTheme: vi.fn(),
    disabled: false,
    ...over,
  };
  render(<ControlPanel {...props} />);
  return props;
}

afterEach(cleanup);

describe('ControlPanel', () => {
  it('reports the chosen time window', () => {
    const p = setup();
    expect((screen.getByRole('radio', { name: '1 min' }) as HTMLInputElement).checked).toBe(true);
    fireEvent.click(screen.getByRole('radio', { name: '15 min' }));
    expect(p.onWindow).toHaveBeenCalledWith('15m');
  });

  it('pauses and shows how many updates wait while paused', () => {
    const p = setup({ paused: true, bufferedWhilePaused: 7 });
    const button = screen.getByTestId('pause-button');
    expect(button.getAttribute('aria-pressed')).toBe('true');
    expect(button.textContent).toContain('Resume');
    expect(screen.getByRole('status').textContent).toBe('7 updates buffered');
    fireEvent.click(button);
    expect(p.onPause).toHaveBeenCalledTimes(1);
  });

  it('toggles metric groups and shows which are selected', () => {
    const p = setup();
    expect((screen.getByRole('checkbox', { name: 'CPU' }) as HTMLInputElement).checked).toBe(true);
    expect((screen.getByRole('checkbox', { name: 'Network' }) as HTMLInputElement).checked).toBe(false);
    fireEvent.click(screen.getByRole('checkbox', { name: 'Network' }));
    expect(p.onToggleGroup).toHaveBeenCalledWith('network');
  });

  it('sends the update rate and shows the effective rate the server granted', () => {
    const p = setup({ effectiveHz: 0.5 });
    fireEvent.change(screen.getByLabelText('Update rate'), { target: { value: '0.2' } });
    expect(p.onRate).toHaveBeenCalledWith('0.2');
    expect(screen.getByTestId('effective-rate').textContent).toBe('0.5 Hz');
  });

  it('disables the stream controls while disconnected', () => {
    setup({ disabled: true });
    expect((screen.getByLabelText('Update rate') as HTMLSelectElement).disabled).toBe(true);
    expect(screen.getByRole('checkbox', { name: 'CPU' }).matches(':disabled')).toBe(true);
  });

  it('offers a host choice only when there is more than one host', () => {
    setup({ hosts: ['web-1'], host: 'web-1', onHost: vi.fn() });
    expect(screen.queryByLabelText('Host')).toBeNull();
    cleanup();
    const p = setup({ hosts: ['web-1', 'web-2'], host: 'web-1', onHost: vi.fn() });
    fireEvent.change(screen.getByLabelText('Host'), { target: { value: 'web-2' } });
    expect(p.onHost).toHaveBeenCalledWith('web-2');
  });

  it('changes the theme', () => {
    const p = setup();
    fireEvent.change(screen.getByLabelText('Theme'), { target: { value: 'dark' } });
    expect(p.onTheme).toHaveBeenCalledWith('dark');
  });
});
