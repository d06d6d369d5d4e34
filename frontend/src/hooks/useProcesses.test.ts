// The processes hook's life on the wire: subscribe when connected, again
// after a reconnect and when the order changes; unsubscribe on the way out;
// a timeout is not "unavailable" (tables may still come).
import { act, renderHook } from '@testing-library/react';
import { describe, expect, it, vi } from 'vitest';
import { createHostFeed } from '../services/hostFeed';
import { processesFrame } from '../components/host/hostFrames.fixture';
import { useProcesses, type UseProcessesOptions } from './useProcesses';

function harness(reply: () => Promise<Record<string, unknown>> = () => Promise.resolve({})) {
  const sent: { type: string; data: unknown }[] = [];
  const send = vi.fn((type: string, data: object = {}) => {
    sent.push({ type, data });
    return reply();
  });
  const feed = createHostFeed();
  const base: UseProcessesOptions = { send, feed, connected: true, sort: 'cpu', host: 'web-1' };
  const hook = renderHook((props: UseProcessesOptions) => useProcesses(props), { initialProps: base });
  return { sent, feed, base, hook };
}

describe('useProcesses', () => {
  it('subscribes again after a reconnect and for a new order, unsubscribing in between', () => {
    const { sent, base, hook } = harness();
    expect(sent.map((s) => s.type)).toEqual(['processes_subscribe']);
    hook.rerender({ ...base, connected: false });
    hook.rerender({ ...base, connected: true });
    hook.rerender({ ...base, sort: 'io' });
    expect(sent.map((s) => s.type)).toEqual([
      'processes_subscribe',
      'processes_unsubscribe',
      'processes_subscribe',
      'processes_unsubscribe',
      'processes_subscribe',
    ]);
    expect(sent.at(-1)?.data).toEqual({ sort: 'io', limit: 50, host: 'web-1' });
  });

  it('does not subscribe while disconnected', () => {
    const { sent, base, hook } = harness();
    hook.rerender({ ...base, connected: false });
    const count = sent.length;
    hook.rerender({ ...base, connected: false, sort: 'memory' });
    expect(sent.length).toBe(count);
  });

  it('a request that times out leaves it waiting for tables, which still count', async () => {
    const { feed, hook } = harness(() => Promise.reject(new Error('processes_subscribe: no reply in time')));
    await act(async () => {});
    expect(hook.result.current.status).toBe('waiting');
    act(() => {
      feed.push(processesFrame());
    });
    expect(hook.result.current.status).toBe('live');
    expect(hook.result.current.data?.total).toBe(312);
  });
});
