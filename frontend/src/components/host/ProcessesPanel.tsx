// The live processes panel (issue 19): the top processes of the host shown,
// streamed every ~2 s while the panel is on screen. Sort by any column (CPU,
// memory and I/O also change which top N the server sends), filter by name
// or user, the process count, a row opens its details; "Processes at…"
// opens the look-back for a moment typed in (the keyboard way to what a
// click on the CPU or memory chart does).
import { memo, useId, useMemo, useState, type FormEvent } from 'react';
import { useProcesses } from '../../hooks/useProcesses';
import type { ProcessSort, SendRequest } from '../../protocol/hostTypes';
import {
  filterProcesses,
  nextOrder,
  serverSortFor,
  sortProcesses,
  type ProcessColumn,
  type ProcessOrder,
} from '../../protocol/processes';
import type { HostFeed } from '../../services/hostFeed';
import { formatClock } from '../../services/format';
import ProcessDetails from './ProcessDetails';
import ProcessTable from './ProcessTable';

const SORT_LABEL: Record<ProcessSort, string> = { cpu: 'CPU', memory: 'memory', io: 'I/O' };

/** `YYYY-MM-DDTHH:MM:SS` in local time, for a datetime-local input. */
function localInputValue(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 19);
}

export interface ProcessesPanelProps {
  send: SendRequest;
  feed: HostFeed;
  connected: boolean;
  host: string | null;
  redacted: boolean;
  /** The dashboard's pause: the table stays as it is. */
  paused?: boolean;
  onLookBack?: (timeMs: number) => void;
}

function ProcessesPanel({ send, feed, connected, host, redacted, paused = false, onLookBack }: ProcessesPanelProps) {
  const headingId = useId();
  const filterId = useId();
  const atId = useId();
  const [order, setOrder] = useState<ProcessOrder>({ column: 'cpu', direction: 'desc' });
  const [serverSort, setServerSort] = useState<ProcessSort>('cpu');
  const [query, setQuery] = useState('');
  const [selectedPid, setSelectedPid] = useState<number | null>(null);
  const [lookBackValue, setLookBackValue] = useState('');
  const state = useProcesses({ send, feed, connected, sort: serverSort, host, paused });
  const data = state.data;

  const rows = useMemo(() => (data ? sortProcesses(filterProcesses(data.processes, query), order) : []), [data, query, order]);
  const selected = selectedPid === null ? null : data?.processes.find((p) => p.pid === selectedPid) ?? null;
  const parent = selected ? data?.processes.find((p) => p.pid === selected.ppid) ?? null : null;

  if (state.status === 'unavailable') {
    return (
      <section className="panel host-panel host-processes" aria-labelledby={headingId} data-testid="host-processes">
        <h3 id={headingId}>Processes</h3>
        <p className="muted">The live process list is not available here: {state.error}</p>
      </section>
    );
  }

  const onOrder = (column: ProcessColumn) => {
    const next = nextOrder(order, column);
    setOrder(next);
    const wanted = serverSortFor(next.column);
    if (wanted) setServerSort(wanted);
  };

  const onLookBackSubmit = (e: FormEvent) => {
    e.preventDefault();
    const t = Date.parse(lookBackValue);
    if (Number.isFinite(t)) onLookBack?.(t);
  };

  const count = data
    ? `${data.total} processes, ${data.running} running · top ${data.processes.length} by ${SORT_LABEL[data.sort]}` +
      (query.trim() ? ` · ${rows.length} match` : '')
    : state.status === 'waiting'
      ? 'Waiting for the first process table…'
      : 'Not connected';

  return (
    <section className="panel host-panel host-processes" aria-labelledby={headingId} data-testid="host-processes">
      <div className="host-panel-head">
        <h3 id={headingId}>Processes</h3>
        <span className="host-panel-meta" data-testid="process-count">
          {count}
          {data && Number.isFinite(data.timestamp) ? ` · ${formatClock(data.timestamp)}` : ''}
          {paused ? ' · paused' : ''}
        </span>
      </div>
      <div className="host-toolbar">
        <label htmlFor={filterId}>Filter</label>
        <input
          id={filterId}
          type="search"
          value={query}
          placeholder={redacted ? 'name or pid' : 'name, user or pid'}
          onChange={(e) => setQuery(e.target.value)}
        />
        {onLookBack ? (
          <form className="host-lookback" onSubmit={onLookBackSubmit}>
            <label htmlFor={atId}>Processes at</label>
            <input
              id={atId}
              type="datetime-local"
              step={1}
              value={lookBackValue}
              onFocus={() => {
                if (!lookBackValue) setLookBackValue(localInputValue(Date.now() - 60_000));
              }}
              onChange={(e) => setLookBackValue(e.target.value)}
            />
            <button type="submit" className="btn btn-small" disabled={!connected}>
              Show
            </button>
            <span className="host-hint">or click a point on the CPU or memory chart</span>
          </form>
        ) : null}
      </div>
      {data ? (
        <ProcessTable
          rows={rows}
          order={order}
          onOrder={onOrder}
          now={data.timestamp}
          caption={`Processes, sorted by ${order.column} (${order.direction === 'asc' ? 'ascending' : 'descending'})`}
          selectedPid={selectedPid}
          onSelect={(pid) => setSelectedPid((cur) => (cur === pid ? null : pid))}
          testId="process-table"
        />
      ) : null}
      {selectedPid !== null ? (
        <ProcessDetails process={selected} pid={selectedPid} parent={parent} redacted={redacted} onClose={() => setSelectedPid(null)} />
      ) : null}
    </section>
  );
}

// Re-rendered only when its own inputs change, not with every dashboard render.
export default memo(ProcessesPanel);
