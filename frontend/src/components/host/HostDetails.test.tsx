// The host section with recorded frames: processes (live table, sort,
// filter, details, viewer without users and command lines, a server
// without the stream), file systems, interfaces, disks, services, sensors
// only where present. The series store is the real one; the socket's send
// is a fake that records requests; Chart.js is faked (jsdom has no canvas).
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';

vi.mock('chart.js', () => {
  class Chart {
    static register() {}
    data: unknown;
    options: unknown;
    constructor(_canvas: unknown, config: { data: unknown; options: unknown }) {
      this.data = config.data;
      this.options = config.options;
    }
    update() {}
    draw() {}
    destroy() {}
  }
  const part = (id: string) => ({ id });
  return {
    Chart,
    Decimation: part('decimation'),
    Filler: part('filler'),
    Legend: part('legend'),
    LineController: part('line'),
    LineElement: part('lineElement'),
    LinearScale: part('linear'),
    PointElement: part('point'),
    Tooltip: part('tooltip'),
  };
});

const { default: HostDetails } = await import('./HostDetails');
const { createHostFeed } = await import('../../services/hostFeed');
const { createSeriesStore } = await import('../../services/seriesStore');
const { toSample } = await import('../../protocol/parse');
const { ProtocolError } = await import('../../connection/DashboardConnection');
const { HOST_METRICS, SENSOR_METRICS, metricsUpdate, processesFrame } = await import('./hostFrames.fixture');
type FamilyInfo = import('../../protocol/hostTypes').FamilyInfo;

interface Sent {
  type: string;
  data: Record<string, unknown>;
}

function fakeSend(reply: (type: string, data: Record<string, unknown>) => Promise<Record<string, unknown>> = () => Promise.resolve({})) {
  const sent: Sent[] = [];
  const send = vi.fn((type: string, data: object = {}) => {
    sent.push({ type, data: data as Record<string, unknown> });
    return reply(type, data as Record<string, unknown>);
  });
  return { send, sent };
}

function setup({ metrics = HOST_METRICS, role = 'operator', families, reply }: { metrics?: Record<string, number>; role?: string; families?: FamilyInfo[]; reply?: Parameters<typeof fakeSend>[0] } = {}) {
  const store = createSeriesStore();
  const sample = toSample(metricsUpdate(metrics));
  if (sample) store.appendSample(sample);
  const feed = createHostFeed();
  const { send, sent } = fakeSend(reply);
  const ack = families ? ({ host: 'web-1', role, families } as unknown as import('../../protocol/hostTypes').HostAckData) : null;
  const view = render(
    <HostDetails store={store} feed={feed} send={send} ack={ack} connected role={role} host="web-1" windowMs={300_000} paused={false} theme="light" />,
  );
  return { store, feed, send, sent, view };
}

function pushProcesses(feed: ReturnType<typeof createHostFeed>, opts: Parameters<typeof processesFrame>[0] = {}) {
  act(() => {
    feed.push(processesFrame(opts));
  });
}

const processRows = () => within(screen.getByTestId('process-table')).getAllByRole('row').slice(1);
const procHeader = (name: RegExp) => within(screen.getByTestId('process-table')).getByRole('columnheader', { name });
const rowNames = () => processRows().map((r) => within(r).getByRole('rowheader').textContent);

afterEach(() => cleanup());

describe('HostDetails: processes', () => {
  it('subscribes to the processes stream and shows the table with the process count', async () => {
    const { feed, sent } = setup();
    expect(sent.find((s) => s.type === 'processes_subscribe')?.data).toEqual({ sort: 'cpu', limit: 50, host: 'web-1' });
    expect(screen.getByTestId('process-count').textContent).toContain('Waiting');
    pushProcesses(feed);
    expect(rowNames()).toEqual(['postgres', 'systemd', 'python3']);
    expect(screen.getByTestId('process-count').textContent).toContain('312 processes, 3 running · top 3 by CPU');
    expect(procHeader(/User/)).toBeTruthy();
    expect(procHeader(/CPU %/).getAttribute('aria-sort')).toBe('descending');
  });

  it('ignores tables of another host', () => {
    const { feed } = setup();
    act(() => {
      feed.push({ ...processesFrame(), data: { ...processesFrame().data, host: 'db-2' } });
    });
    expect(screen.queryByTestId('process-table')).toBeNull();
  });

  it('sorting by memory re-subscribes for the memory top N and orders the rows', () => {
    const { feed, sent } = setup();
    pushProcesses(feed);
    fireEvent.click(screen.getByRole('button', { name: /Mem %/ }));
    expect(sent.map((s) => s.type).slice(-2)).toEqual(['processes_unsubscribe', 'processes_subscribe']);
    expect(sent.at(-1)?.data).toEqual({ sort: 'memory', limit: 50, host: 'web-1' });
    expect(rowNames()).toEqual(['python3', 'postgres', 'systemd']);
    expect(procHeader(/Mem %/).getAttribute('aria-sort')).toBe('descending');
    // Name sorts locally: no new subscription.
    const count = sent.length;
    fireEvent.click(screen.getByRole('button', { name: /^Name/ }));
    expect(sent.length).toBe(count);
    expect(rowNames()).toEqual(['postgres', 'python3', 'systemd']);
  });

  it('filters by name or user and says how many match', () => {
    const { feed } = setup();
    pushProcesses(feed);
    fireEvent.change(screen.getByLabelText('Filter'), { target: { value: 'alice' } });
    expect(rowNames()).toEqual(['python3']);
    expect(screen.getByTestId('process-count').textContent).toContain('1 match');
  });

  it('a click on a row opens its details, live, with the parent and the command line (operator)', () => {
    const { feed } = setup();
    pushProcesses(feed);
    fireEvent.click(screen.getByRole('button', { name: 'python3' }));
    const details = screen.getByTestId('process-details');
    expect(details.textContent).toContain('python3 (5150)');
    expect(details.textContent).toContain('postgres (4242)');
    expect(details.textContent).toContain('alice');
    expect(details.textContent).toContain('python3 train.py');
    expect(details.textContent).toContain('measuring');
    fireEvent.click(screen.getByRole('button', { name: 'Close details' }));
    expect(screen.queryByTestId('process-details')).toBeNull();
  });

  it('a viewer sees no user column and no command line anywhere', () => {
    const { feed, view } = setup({ role: 'viewer' });
    pushProcesses(feed, { viewer: true });
    expect(rowNames()).toEqual(['postgres', 'systemd', 'python3']);
    expect(within(screen.getByTestId('process-table')).queryByRole('columnheader', { name: /User/ })).toBeNull();
    fireEvent.click(processRows()[0]);
    const details = screen.getByTestId('process-details');
    expect(details.textContent).toContain('hidden for viewers');
    expect(view.container.textContent).not.toContain('hunter2');
    expect(view.container.textContent).not.toContain('alice');
  });

  it('says so when the server has no process stream, instead of waiting', async () => {
    setup({
      reply: (type) =>
        type === 'processes_subscribe'
          ? Promise.reject(new ProtocolError({ code: 'unknown_type', message: 'unknown message type processes_subscribe' }))
          : Promise.resolve({}),
    });
    await waitFor(() => expect(screen.getByTestId('host-processes').textContent).toContain('not available here: unknown message type processes_subscribe'));
  });

  it('for a host this node does not stream (an agent), says so from the server', async () => {
    const { sent } = setup({
      reply: (type, data) =>
        type === 'processes_subscribe' && data.host === 'web-1'
          ? Promise.reject(new ProtocolError({ code: 'not_found', message: "this node streams the processes of 'hub' only" }))
          : Promise.resolve({}),
    });
    expect(sent.find((s) => s.type === 'processes_subscribe')?.data.host).toBe('web-1');
    await waitFor(() => expect(screen.getByTestId('host-processes').textContent).toContain("streams the processes of 'hub' only"));
  });

  it('a first table sent as the reply to the subscribe is shown too', async () => {
    setup({ reply: (type) => Promise.resolve(type === 'processes_subscribe' ? processesFrame().data : {}) });
    await waitFor(() => expect(rowNames()).toEqual(['postgres', 'systemd', 'python3']));
  });

  it('keeps the table as it is while the dashboard is paused', () => {
    const { feed, view, send } = setup();
    pushProcesses(feed);
    const props = { store: createSeriesStore(), feed, send, ack: null, connected: true, role: 'operator', host: 'web-1', windowMs: 300_000, theme: 'light' };
    view.rerender(<HostDetails {...props} paused />);
    act(() => {
      feed.push({ ...processesFrame(), data: { ...processesFrame().data, total: 999 } });
    });
    expect(screen.getByTestId('process-count').textContent).toContain('312 processes');
    expect(screen.getByTestId('process-count').textContent).toContain('paused');
    view.rerender(<HostDetails {...props} paused={false} />);
    act(() => {
      feed.push({ ...processesFrame(), data: { ...processesFrame().data, total: 1000 } });
    });
    expect(screen.getByTestId('process-count').textContent).toContain('1000 processes');
  });

  it('shows the newest table at once when it is shown again', () => {
    const { feed, view, send } = setup();
    pushProcesses(feed);
    view.unmount();
    render(<HostDetails store={createSeriesStore()} feed={feed} send={send} ack={null} connected role="operator" host="web-1" windowMs={300_000} paused={false} theme="light" />);
    expect(rowNames()).toEqual(['postgres', 'systemd', 'python3']);
  });

  it('unsubscribes when it goes', () => {
    const { sent, view } = setup();
    view.unmount();
    expect(sent.at(-1)?.type).toBe('processes_unsubscribe');
  });

  it('"Processes at" hands the moment typed in to onLookBack', () => {
    const store = createSeriesStore();
    const onLookBack = vi.fn();
    const { send } = fakeSend();
    render(<HostDetails store={store} feed={createHostFeed()} send={send} ack={null} connected role="admin" host={null} windowMs={300_000} paused={false} theme="light" onLookBack={onLookBack} />);
    fireEvent.change(screen.getByLabelText('Processes at'), { target: { value: '2026-12-07T14:30:05' } });
    fireEvent.click(screen.getByRole('button', { name: 'Show' }));
    expect(onLookBack).toHaveBeenCalledWith(new Date(2026, 11, 7, 14, 30, 5).getTime());
  });
});

describe('HostDetails: file systems, interfaces, disks, services, sensors', () => {
  it('shows file systems as usage bars with the numbers in text, critical ones marked', () => {
    setup();
    const fs = screen.getByTestId('host-filesystems');
    const items = within(fs).getAllByRole('listitem');
    expect(items.map((i) => i.getAttribute('data-mount'))).toEqual(['/', '/var/lib/data']);
    expect(items[0].textContent).toContain('25.9 %');
    expect(items[0].textContent).toContain('26.3 GiB of 252 GiB used');
    expect(items[0].textContent).toContain('inodes 3 %');
    expect(items[1].className).toContain('level-crit');
    expect(items[1].textContent).toContain('critical');
    expect((items[0].querySelector('.usage-fill') as HTMLElement).style.width).toBe('25.93%');
  });

  it('shows every interface, and a chart of the first with a selector', () => {
    setup();
    const panel = screen.getByTestId('host-interfaces');
    const rows = within(within(panel).getByTestId('interfaces-table')).getAllByRole('row').slice(1);
    expect(rows.map((r) => r.getAttribute('data-iface'))).toEqual(['eth0', 'ifb0', 'lo']);
    expect(rows[0].textContent).toContain('up, 10 Gbit/s');
    expect(rows[1].textContent).toContain('down');
    expect(within(panel).getByRole('heading', { name: 'Interface eth0' })).toBeTruthy();
    fireEvent.change(within(panel).getByLabelText('Interface'), { target: { value: 'lo' } });
    expect(within(panel).getByRole('heading', { name: 'Interface lo' })).toBeTruthy();
  });

  it('fills the chosen interface chart from history', async () => {
    const { sent } = setup();
    await waitFor(() => expect(sent.some((s) => s.type === 'history')).toBe(true));
    const fill = sent.find((s) => s.type === 'history' && (s.data.metrics as string[]).includes('net_rx_bytes_per_second{iface="eth0"}'));
    expect(fill?.data).toMatchObject({ from: '-5m', metrics: ['net_rx_bytes_per_second{iface="eth0"}', 'net_tx_bytes_per_second{iface="eth0"}'], host: 'web-1' });
  });

  it('shows disks and services', () => {
    setup();
    expect(within(screen.getByTestId('disks-table')).getAllByRole('row')[1].textContent).toContain('vda');
    const services = within(screen.getByTestId('services-table')).getAllByRole('row').slice(1);
    expect(services[0].textContent).toContain('3f2a9c1b7d4e');
    expect(services[0].textContent).toContain('256 MiB / 512 MiB');
    expect(services[1].textContent).toContain('nginx.service');
  });

  it('has no sensors panel on a host without sensors, and one where they are', () => {
    setup();
    expect(screen.queryByTestId('host-sensors')).toBeNull();
    cleanup();
    setup({ metrics: { ...HOST_METRICS, ...SENSOR_METRICS } });
    const sensors = screen.getByTestId('host-sensors');
    expect(sensors.textContent).toContain('coretemp · Core 0');
    expect(sensors.textContent).toContain('91.0 °C (high)');
    expect(sensors.textContent).toContain('2900 rpm');
    expect(sensors.textContent).toContain('BAT0: 87 %, charging');
  });

  it('without host series: no panels, unless the server announces the family (then it waits for data)', async () => {
    setup({ metrics: { cpu_usage: 1 } });
    expect(screen.queryByTestId('host-filesystems')).toBeNull();
    expect(screen.queryByTestId('host-interfaces')).toBeNull();
    cleanup();
    const families = [{ name: 'disk_used_percent', unit: '%', kind: 'gauge', labels: { mount: ['/'] } }];
    const { sent, store } = setup({ metrics: { cpu_usage: 1 }, families });
    expect(screen.getByTestId('host-filesystems').textContent).toContain('Waiting for the first reading');
    // The newest values are seeded from history, coarse buckets that must not
    // widen the charts' gap threshold.
    await waitFor(() => expect(sent.find((s) => s.type === 'history')?.data).toMatchObject({ metrics: ['disk_used_percent'], from: '-2m' }));
    expect(store.bucketMs()).toBe(0);
  });

  it('seeded history values reach the panels', async () => {
    const families = [{ name: 'disk_used_percent', unit: '%', kind: 'gauge', labels: { mount: ['/srv'] } }];
    setup({
      metrics: { cpu_usage: 1 },
      families,
      reply: (type) =>
        Promise.resolve(type === 'history' ? { bucket_ms: 30_000, series: { 'disk_used_percent{fstype="ext4",mount="/srv"}': [{ t: Date.now(), avg: 42 }] } } : {}),
    });
    await waitFor(() => expect(screen.getByTestId('host-filesystems').textContent).toContain('42.0 %'));
  });
});
