// The process table, like htop's: sortable columns (aria-sort on the sorted
// one), a row per process that opens its details, and on a phone only the
// key columns (name, CPU, memory). Presentational: the rows come sorted and
// filtered from the caller. User names and command lines are shown only when
// the rows carry them (the server leaves them out for viewers).
import type { ProcessRow } from '../../protocol/hostTypes';
import { ioOf, type ProcessColumn, type ProcessOrder } from '../../protocol/processes';
import { formatBytes, formatBytesPerSecond, formatDuration } from '../../services/format';
import TableWrap from './TableWrap';

interface Column {
  id: ProcessColumn;
  label: string;
  /** Shown on a phone too. */
  key?: boolean;
  numeric?: boolean;
  cell: (p: ProcessRow, now: number) => string;
}

function percent(v: number | null): string {
  return v === null ? '—' : v.toFixed(1);
}

const COLUMNS: Column[] = [
  { id: 'pid', label: 'PID', numeric: true, cell: (p) => String(p.pid) },
  { id: 'name', label: 'Name', key: true, cell: (p) => p.name },
  { id: 'user', label: 'User', cell: (p) => p.user ?? '—' },
  { id: 'state', label: 'State', cell: (p) => p.state || '—' },
  { id: 'cpu', label: 'CPU %', key: true, numeric: true, cell: (p) => percent(p.cpu_percent) },
  { id: 'memory', label: 'Mem %', key: true, numeric: true, cell: (p) => percent(p.memory_percent) },
  { id: 'rss', label: 'RSS', numeric: true, cell: (p) => formatBytes(p.rss, 1) },
  { id: 'threads', label: 'Thr', numeric: true, cell: (p) => String(p.threads) },
  {
    id: 'io',
    label: 'I/O',
    numeric: true,
    cell: (p) => {
      const io = ioOf(p);
      return io === null ? '—' : formatBytesPerSecond(io, 1);
    },
  },
  {
    id: 'started',
    label: 'Age',
    numeric: true,
    cell: (p, now) => (Number.isFinite(p.started) ? formatDuration(Math.max(0, (now - p.started) / 1000)) : '—'),
  },
];

export interface ProcessTableProps {
  rows: readonly ProcessRow[];
  order: ProcessOrder;
  onOrder: (column: ProcessColumn) => void;
  /** Times relative to this (the snapshot's timestamp). */
  now: number;
  caption: string;
  selectedPid?: number | null;
  onSelect?: (pid: number) => void;
  testId?: string;
}

export default function ProcessTable({ rows, order, onOrder, now, caption, selectedPid = null, onSelect, testId }: ProcessTableProps) {
  const showUser = rows.some((p) => p.user !== null);
  const columns = COLUMNS.filter((c) => c.id !== 'user' || showUser);
  return (
    <TableWrap label={caption}>
      <table className="host-table process-table" data-testid={testId}>
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => {
              const sorted = order.column === c.id;
              return (
                <th
                  key={c.id}
                  scope="col"
                  className={`${c.numeric ? 'num' : ''}${c.key ? '' : ' col-optional'}`}
                  aria-sort={sorted ? (order.direction === 'asc' ? 'ascending' : 'descending') : undefined}
                >
                  <button type="button" className="sort-btn" onClick={() => onOrder(c.id)}>
                    {c.label}
                    <span aria-hidden="true" className="sort-mark">{sorted ? (order.direction === 'asc' ? '▲' : '▼') : ''}</span>
                  </button>
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {rows.map((p) => (
            <tr
              key={`${p.pid}-${p.started}`}
              className={p.pid === selectedPid ? 'is-selected' : undefined}
              data-pid={p.pid}
              onClick={onSelect ? () => onSelect(p.pid) : undefined}
            >
              {columns.map((c) =>
                c.id === 'name' ? (
                  <th key={c.id} scope="row" className="proc-name">
                    {onSelect ? (
                      <button type="button" className="link-btn cell-clip" aria-pressed={p.pid === selectedPid} title={p.name}>
                        {p.name}
                      </button>
                    ) : (
                      <span className="cell-clip" title={p.name}>{p.name}</span>
                    )}
                  </th>
                ) : (
                  <td key={c.id} className={`${c.numeric ? 'num' : ''}${c.key ? '' : ' col-optional'}`}>
                    {c.cell(p, now)}
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}
