// Process tables off the wire: parsing (operator and viewer frames, the
// collector's own field names, junk), sorting by any column with unknown
// values last, and filtering by name, user or pid.
import { describe, expect, it } from 'vitest';
import { processesFrame, T0 } from '../components/host/hostFrames.fixture';
import { filterProcesses, nextOrder, parseProcessRow, parseProcessesData, serverSortFor, sortProcesses } from './processes';

describe('parseProcessesData', () => {
  it('normalises an operator frame: times to epoch ms, user and command line kept', () => {
    const data = parseProcessesData(processesFrame().data)!;
    expect(data.timestamp).toBe(T0);
    expect(data.total).toBe(312);
    expect(data.running).toBe(3);
    expect(data.sort).toBe('cpu');
    const pg = data.processes[0];
    expect(pg).toMatchObject({ pid: 4242, user: 'postgres', cmdline: 'postgres: writer process --password=hunter2', read_bytes_per_second: 4096 });
    expect(pg.started).toBe(Date.parse('2026-12-07T13:00:00Z'));
    expect(data.processes[2].cpu_percent).toBeNull();
  });

  it('a viewer frame has no user and no command line, and parses to nulls', () => {
    const data = parseProcessesData(processesFrame({ viewer: true }).data)!;
    expect(data.processes).toHaveLength(3);
    for (const p of data.processes) {
      expect(p.user).toBeNull();
      expect(p.cmdline).toBeNull();
    }
  });

  it("accepts the collector's own names for rates and start time", () => {
    const row = parseProcessRow({ pid: 7, name: 'dd', io_read_bps: 10, io_write_bps: 20, start_time: 1_765_000_000 });
    expect(row).toMatchObject({ read_bytes_per_second: 10, write_bytes_per_second: 20, started: 1_765_000_000_000 });
  });

  it('drops rows without pid or name and refuses what is not a table', () => {
    const data = parseProcessesData({ processes: [{ pid: 1 }, { name: 'x' }, null, 'junk', { pid: 2, name: 'ok' }] })!;
    expect(data.processes.map((p) => p.pid)).toEqual([2]);
    expect(parseProcessesData({ processes: 'no' })).toBeNull();
    expect(parseProcessesData(null)).toBeNull();
    expect(parseProcessesData({ ...processesFrame().data, sort: 'weird' })!.sort).toBe('cpu');
  });
});

describe('sortProcesses', () => {
  const rows = parseProcessesData(processesFrame().data)!.processes;

  it('sorts by CPU descending with an unknown CPU (first reading) last', () => {
    expect(sortProcesses(rows, { column: 'cpu', direction: 'desc' }).map((p) => p.pid)).toEqual([4242, 1, 5150]);
    expect(sortProcesses(rows, { column: 'cpu', direction: 'asc' }).map((p) => p.pid)).toEqual([1, 4242, 5150]);
  });

  it('sorts by memory, name, pid and I/O', () => {
    expect(sortProcesses(rows, { column: 'memory', direction: 'desc' }).map((p) => p.name)).toEqual(['python3', 'postgres', 'systemd']);
    expect(sortProcesses(rows, { column: 'name', direction: 'asc' }).map((p) => p.name)).toEqual(['postgres', 'python3', 'systemd']);
    expect(sortProcesses(rows, { column: 'pid', direction: 'asc' }).map((p) => p.pid)).toEqual([1, 4242, 5150]);
    // systemd's I/O is unreadable (null): last either way.
    expect(sortProcesses(rows, { column: 'io', direction: 'asc' }).map((p) => p.pid)).toEqual([5150, 4242, 1]);
  });

  it('does not reorder the array it is given', () => {
    const before = rows.map((p) => p.pid);
    sortProcesses(rows, { column: 'name', direction: 'desc' });
    expect(rows.map((p) => p.pid)).toEqual(before);
  });

  it('maps columns to the server order that makes their top N right', () => {
    expect(serverSortFor('cpu')).toBe('cpu');
    expect(serverSortFor('rss')).toBe('memory');
    expect(serverSortFor('io')).toBe('io');
    expect(serverSortFor('name')).toBeNull();
  });

  it('a click on the sorted column flips it; another column starts at its natural direction', () => {
    expect(nextOrder({ column: 'cpu', direction: 'desc' }, 'cpu')).toEqual({ column: 'cpu', direction: 'asc' });
    expect(nextOrder({ column: 'cpu', direction: 'desc' }, 'name')).toEqual({ column: 'name', direction: 'asc' });
    expect(nextOrder({ column: 'name', direction: 'asc' }, 'memory')).toEqual({ column: 'memory', direction: 'desc' });
  });
});

describe('filterProcesses', () => {
  const rows = parseProcessesData(processesFrame().data)!.processes;

  it('matches name or user, case-insensitively, and a number matches the pid', () => {
    expect(filterProcesses(rows, 'PY').map((p) => p.pid)).toEqual([5150]);
    expect(filterProcesses(rows, 'root').map((p) => p.pid)).toEqual([1]);
    expect(filterProcesses(rows, '4242').map((p) => p.pid)).toEqual([4242]);
    expect(filterProcesses(rows, '  ').length).toBe(3);
    expect(filterProcesses(rows, 'nothing-like-it')).toEqual([]);
  });

  it('for a viewer (no users) filters by name only, without failing', () => {
    const viewerRows = parseProcessesData(processesFrame({ viewer: true }).data)!.processes;
    expect(filterProcesses(viewerRows, 'root')).toEqual([]);
    expect(filterProcesses(viewerRows, 'post').map((p) => p.pid)).toEqual([4242]);
  });
});
