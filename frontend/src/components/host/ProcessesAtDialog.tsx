// "Which processes were on top then?" (issue 19, look-back as atop keeps
// it): a modal with the process table nearest a moment, from
// `processes_at`. Opened by a click on the CPU or memory chart
// (MetricsChart's `onPointClick(timeMs)`) or the processes panel's
// "Processes at" field. Escape, the close button or the backdrop close it;
// focus goes to the dialog and back where it was.
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import { ProtocolError } from '../../connection/DashboardConnection';
import { PROCESS_SORTS, type ProcessSort, type ProcessesData, type SendRequest } from '../../protocol/hostTypes';
import { nextOrder, parseProcessesData, sortProcesses, serverSortFor, type ProcessColumn, type ProcessOrder } from '../../protocol/processes';
import { formatClock } from '../../services/format';
import ProcessTable from './ProcessTable';

/** Rows shown: the look-back keeps the top 50 of each order. */
const ROWS = 20;
const SORT_LABEL: Record<ProcessSort, string> = { cpu: 'CPU', memory: 'Memory', io: 'I/O' };

export interface ProcessesAtDialogProps {
  /** The moment asked for, epoch ms. */
  time: number;
  send: SendRequest;
  host?: string | null;
  onClose: () => void;
}

type LookBack =
  | { state: 'loading' }
  | { state: 'ready'; data: ProcessesData }
  | { state: 'not_found' | 'failed'; message: string };

function dateTime(ms: number): string {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? formatClock(ms) : `${d.toLocaleDateString()} ${formatClock(ms)}`;
}

export default function ProcessesAtDialog({ time, send, host, onClose }: ProcessesAtDialogProps) {
  const headingId = useId();
  const dialogRef = useRef<HTMLDivElement>(null);
  const [sort, setSort] = useState<ProcessSort>('cpu');
  const [order, setOrder] = useState<ProcessOrder>({ column: 'cpu', direction: 'desc' });
  const [result, setResult] = useState<LookBack>({ state: 'loading' });
  // The caller may pass a new closure each render; the key handler reads the newest.
  const closeRef = useRef(onClose);
  closeRef.current = onClose;

  useEffect(() => {
    let active = true;
    setResult({ state: 'loading' });
    const data: Record<string, unknown> = { time: new Date(time).toISOString(), sort };
    if (host) data.host = host;
    send('processes_at', data).then(
      (reply) => {
        if (!active) return;
        const table = parseProcessesData(reply);
        setResult(table ? { state: 'ready', data: table } : { state: 'failed', message: 'The reply held no process table.' });
      },
      (err: unknown) => {
        if (!active) return;
        if (err instanceof ProtocolError && err.code === 'not_found') {
          setResult({ state: 'not_found', message: `No process table was kept near ${dateTime(time)}.` });
        } else {
          setResult({ state: 'failed', message: err instanceof Error ? err.message : String(err) });
        }
      },
    );
    return () => {
      active = false;
    };
  }, [time, sort, host, send]);

  // Focus into the dialog on open, back to where it was on close; Escape closes.
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    dialogRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') closeRef.current();
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      before?.focus?.();
    };
  }, []);

  const rows = useMemo(
    () => (result.state === 'ready' ? sortProcesses(result.data.processes, order).slice(0, ROWS) : []),
    [result, order],
  );

  const onOrder = (column: ProcessColumn) => {
    const next = nextOrder(order, column);
    setOrder(next);
    const wanted = serverSortFor(next.column);
    if (wanted) setSort(wanted);
  };

  return (
    <div className="modal-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div
        ref={dialogRef}
        className="panel host-dialog"
        role="dialog"
        aria-modal="true"
        aria-labelledby={headingId}
        tabIndex={-1}
        data-testid="processes-at-dialog"
      >
        <div className="host-panel-head">
          <h2 id={headingId}>Top processes at {dateTime(time)}</h2>
          <button type="button" className="btn btn-small" onClick={onClose}>
            Close
          </button>
        </div>
        <div className="host-toolbar" role="group" aria-label="Top processes by">
          {PROCESS_SORTS.map((s) => (
            <button
              key={s}
              type="button"
              className="btn btn-small"
              aria-pressed={sort === s}
              onClick={() => {
                setSort(s);
                setOrder({ column: s, direction: 'desc' });
              }}
            >
              {SORT_LABEL[s]}
            </button>
          ))}
        </div>
        {result.state === 'loading' ? <p className="muted" role="status">Loading…</p> : null}
        {result.state === 'not_found' || result.state === 'failed' ? (
          <p className="muted" role="status" data-testid="processes-at-message">
            {result.message}
          </p>
        ) : null}
        {result.state === 'ready' ? (
          <>
            <p className="host-panel-meta" data-testid="processes-at-snapshot">
              Nearest table kept: {dateTime(result.data.timestamp)} · {result.data.total} processes, {result.data.running} running
              {result.data.processes.length && result.data.processes.every((p) => p.cpu_percent === null)
                ? ' · CPU not measured yet in this table (the first reading after a start)'
                : ''}
            </p>
            <ProcessTable
              rows={rows}
              order={order}
              onOrder={onOrder}
              now={result.data.timestamp}
              caption={`Top processes at ${dateTime(result.data.timestamp)}`}
              testId="processes-at-table"
            />
          </>
        ) : null}
      </div>
    </div>
  );
}
