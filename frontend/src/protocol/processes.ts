// The process table on the wire (`processes`, `processes_at`): parsing that
// trusts nothing it is sent, and the sorting and filtering the processes
// panel does on the rows it holds. Pure, unit-tested directly.
import { toEpochMs } from './parse';
import { PROCESS_SORTS, type ProcessRow, type ProcessSort, type ProcessesData } from './hostTypes';

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}

/** The first of several keys that holds a number (the server's row names for a rate, newest first). */
function firstNum(row: Record<string, unknown>, keys: readonly string[]): number | null {
  for (const k of keys) {
    const v = num(row[k]);
    if (v !== null) return v;
  }
  return null;
}

export function isProcessSort(v: unknown): v is ProcessSort {
  return typeof v === 'string' && (PROCESS_SORTS as readonly string[]).includes(v);
}

/** One row off the wire, or null when it has no pid or name. */
export function parseProcessRow(raw: unknown): ProcessRow | null {
  if (!raw || typeof raw !== 'object') return null;
  const row = raw as Record<string, unknown>;
  const pid = num(row.pid);
  const name = str(row.name);
  if (pid === null || name === null) return null;
  return {
    pid,
    ppid: num(row.ppid) ?? 0,
    name,
    user: str(row.user),
    state: str(row.state) ?? '',
    cpu_percent: num(row.cpu_percent),
    memory_percent: num(row.memory_percent) ?? 0,
    rss: num(row.rss) ?? 0,
    threads: num(row.threads) ?? 0,
    // `io_read_bps` / `start_time` are the collector's own field names; the
    // protocol's are first.
    read_bytes_per_second: firstNum(row, ['read_bytes_per_second', 'io_read_bps']),
    write_bytes_per_second: firstNum(row, ['write_bytes_per_second', 'io_write_bps']),
    started: toEpochMs(row.started ?? row.start_time),
    cmdline: str(row.cmdline),
  };
}

/** `processes` / `processes_at` data, or null when it is not a process table. */
export function parseProcessesData(raw: unknown): ProcessesData | null {
  if (!raw || typeof raw !== 'object') return null;
  const d = raw as Record<string, unknown>;
  if (!Array.isArray(d.processes)) return null;
  const processes: ProcessRow[] = [];
  for (const r of d.processes) {
    const row = parseProcessRow(r);
    if (row) processes.push(row);
  }
  return {
    timestamp: toEpochMs(d.timestamp),
    host: str(d.host),
    sort: isProcessSort(d.sort) ? d.sort : 'cpu',
    total: num(d.total) ?? processes.length,
    running: num(d.running) ?? processes.filter((p) => p.state === 'R' || p.state === 'running').length,
    processes,
  };
}

/** Columns the panel sorts by (any of them, on the rows held). */
export type ProcessColumn =
  | 'pid'
  | 'name'
  | 'user'
  | 'state'
  | 'cpu'
  | 'memory'
  | 'rss'
  | 'threads'
  | 'io'
  | 'started';

export type SortDirection = 'asc' | 'desc';

export interface ProcessOrder {
  column: ProcessColumn;
  direction: SortDirection;
}

/** The server-side top N that makes a column's order right: CPU, memory (also RSS) and I/O. */
export function serverSortFor(column: ProcessColumn): ProcessSort | null {
  if (column === 'cpu') return 'cpu';
  if (column === 'memory' || column === 'rss') return 'memory';
  if (column === 'io') return 'io';
  return null;
}

/** A column's natural first direction: numbers biggest first, text A to Z. */
export function defaultDirection(column: ProcessColumn): SortDirection {
  return column === 'name' || column === 'user' || column === 'state' || column === 'pid' ? 'asc' : 'desc';
}

/** Next order after a click on a column header: the same column flips, another starts at its natural direction. */
export function nextOrder(order: ProcessOrder, column: ProcessColumn): ProcessOrder {
  if (order.column === column) return { column, direction: order.direction === 'asc' ? 'desc' : 'asc' };
  return { column, direction: defaultDirection(column) };
}

export function ioOf(p: ProcessRow): number | null {
  if (p.read_bytes_per_second === null && p.write_bytes_per_second === null) return null;
  return (p.read_bytes_per_second ?? 0) + (p.write_bytes_per_second ?? 0);
}

const VALUE_OF: Record<ProcessColumn, (p: ProcessRow) => number | string | null> = {
  pid: (p) => p.pid,
  name: (p) => p.name.toLowerCase(),
  user: (p) => (p.user === null ? null : p.user.toLowerCase()),
  state: (p) => p.state,
  cpu: (p) => p.cpu_percent,
  memory: (p) => p.memory_percent,
  rss: (p) => p.rss,
  threads: (p) => p.threads,
  io: ioOf,
  started: (p) => (Number.isFinite(p.started) ? p.started : null),
};

/**
 * Rows in the given order; unknown values (a first CPU reading, unreadable
 * I/O, a user hidden from viewers) go last in either direction, ties by pid.
 */
export function sortProcesses(rows: readonly ProcessRow[], order: ProcessOrder): ProcessRow[] {
  const value = VALUE_OF[order.column];
  const sign = order.direction === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === null || vb === null) {
      if (va !== vb) return va === null ? 1 : -1;
      return a.pid - b.pid;
    }
    if (va < vb) return -sign;
    if (va > vb) return sign;
    return a.pid - b.pid;
  });
}

/**
 * Rows whose name or user contains the query (case-insensitive); a query
 * that is a whole number also matches the pid. Empty query: every row.
 */
export function filterProcesses(rows: readonly ProcessRow[], query: string): ProcessRow[] {
  const q = query.trim().toLowerCase();
  if (!q) return [...rows];
  const pid = /^\d+$/.test(q) ? Number(q) : null;
  return rows.filter(
    (p) => p.name.toLowerCase().includes(q) || (p.user !== null && p.user.toLowerCase().includes(q)) || (pid !== null && p.pid === pid),
  );
}
