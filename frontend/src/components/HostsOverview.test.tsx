import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import HostsOverview, { OVERVIEW_POINTS, createHostsSeries, sparkPath } from './HostsOverview';

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

const sample = (host: string, t: number, cpu: number, mem: number) => ({ host, t, seq: t, values: { cpu_usage: cpu, memory_usage: mem } });

describe('createHostsSeries', () => {
  it('keeps a bounded series per host and ignores samples that go back in time', () => {
    const series = createHostsSeries(3);
    for (let i = 1; i <= 5; i += 1) series.add(sample('a', i * 1000, i, 50));
    series.add(sample('a', 2000, 99, 99)); // replayed
    series.add(sample('b', 1000, 10, 20));
    expect(series.points('a', 'cpu_usage').map((p) => p.y)).toEqual([3, 4, 5]);
    expect(series.points('b', 'memory_usage')).toEqual([{ x: 1000, y: 20 }]);
    expect(series.points('nobody', 'cpu_usage')).toEqual([]);
    expect(series.lastSeen('a')).toBe(5000);
  });

  it('defaults to OVERVIEW_POINTS per host', () => {
    const series = createHostsSeries();
    for (let i = 1; i <= OVERVIEW_POINTS + 10; i += 1) series.add(sample('a', i, 1, 1));
    expect(series.points('a', 'cpu_usage')).toHaveLength(OVERVIEW_POINTS);
  });
});

describe('sparkPath', () => {
  it('maps 0–100 % onto the box, clamping outliers', () => {
    expect(sparkPath([{ x: 0, y: 0 }])).toBe('');
    expect(sparkPath([{ x: 0, y: 0 }, { x: 10, y: 100 }, { x: 20, y: 150 }], 12, 12)).toBe('1.0,11.0 6.0,1.0 11.0,1.0');
  });
});

describe('HostsOverview', () => {
  it('renders nothing for a single host', () => {
    const { container } = render(<HostsOverview series={createHostsSeries()} hosts={['a']} current="a" onSelect={() => {}} />);
    expect(container.innerHTML).toBe('');
  });

  it('shows one card per host with its latest values and selects a host on click', () => {
    const series = createHostsSeries();
    series.add(sample('web-1', Date.now() - 1000, 12.4, 40));
    series.add(sample('web-1', Date.now(), 20.2, 41));
    series.add(sample('web-2', Date.now(), 80, 90));
    const onSelect = vi.fn();
    render(<HostsOverview series={series} hosts={['web-1', 'web-2']} current="web-1" onSelect={onSelect} />);
    const first = screen.getByTestId('host-card-web-1');
    expect(first.getAttribute('aria-pressed')).toBe('true');
    // No aria-label hiding the visible text: the name is what the card shows.
    expect(first.getAttribute('aria-label')).toBeNull();
    expect(first.textContent.replace(/\s+/g, ' ')).toMatch(/web-1.*CPU.*20 %.*Mem.*41 %/);
    expect(first.querySelector('polyline')?.getAttribute('points')).not.toBe('');
    expect(screen.getByTestId('host-card-web-2').getAttribute('aria-pressed')).toBe('false');
    fireEvent.click(screen.getByTestId('host-card-web-2'));
    expect(onSelect).toHaveBeenCalledWith('web-2');
  });

  it('marks a host whose samples stopped as stale on the next refresh', () => {
    vi.useFakeTimers();
    const series = createHostsSeries();
    series.add(sample('a', Date.now(), 1, 1));
    series.add(sample('b', Date.now(), 1, 1));
    render(<HostsOverview series={series} hosts={['a', 'b']} current="a" onSelect={() => {}} />);
    expect(screen.getByTestId('host-card-b').className).not.toMatch(/stale/);
    act(() => vi.advanceTimersByTime(20_000));
    expect(screen.getByTestId('host-card-b').className).toMatch(/stale/);
    expect(screen.getByTestId('host-card-b').textContent).toMatch(/no recent data/);
  });
});
