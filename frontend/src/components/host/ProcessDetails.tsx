// One process in full: what the table row has, plus its parent, the full
// command line and the user (for operators and admins), and the I/O split.
import type { ProcessRow } from '../../protocol/hostTypes';
import { formatBytes, formatBytesPerSecond } from '../../services/format';

export interface ProcessDetailsProps {
  process: ProcessRow | null;
  /** The pid asked for (the process may have left the top N or exited). */
  pid: number;
  parent: ProcessRow | null;
  /** Viewers never receive user names or command lines. */
  redacted: boolean;
  onClose: () => void;
}

function rate(v: number | null): string {
  return v === null ? 'not readable' : formatBytesPerSecond(v, 1);
}

export default function ProcessDetails({ process, pid, parent, redacted, onClose }: ProcessDetailsProps) {
  const hidden = redacted ? 'hidden for viewers' : 'not available';
  return (
    <section className="process-details" aria-label={`Process ${pid}`} data-testid="process-details">
      <div className="process-details-head">
        <h4>{process ? `${process.name} (${pid})` : `Process ${pid}`}</h4>
        <button type="button" className="btn btn-small" onClick={onClose}>
          Close details
        </button>
      </div>
      {process ? (
        <dl className="details-list">
          <dt>Parent</dt>
          <dd>{parent ? `${parent.name} (${process.ppid})` : process.ppid}</dd>
          <dt>User</dt>
          <dd>{process.user ?? hidden}</dd>
          <dt>State</dt>
          <dd>{process.state || '—'}</dd>
          <dt>CPU</dt>
          <dd>{process.cpu_percent === null ? 'measuring…' : `${process.cpu_percent.toFixed(1)} % of one core`}</dd>
          <dt>Memory</dt>
          <dd>
            {process.memory_percent.toFixed(1)} % ({formatBytes(process.rss)} resident)
          </dd>
          <dt>Threads</dt>
          <dd>{process.threads}</dd>
          <dt>Disk read</dt>
          <dd>{rate(process.read_bytes_per_second)}</dd>
          <dt>Disk write</dt>
          <dd>{rate(process.write_bytes_per_second)}</dd>
          <dt>Started</dt>
          <dd>{Number.isFinite(process.started) ? new Date(process.started).toLocaleString() : '—'}</dd>
          <dt>Command line</dt>
          <dd className="cmdline">{process.cmdline ?? hidden}</dd>
        </dl>
      ) : (
        <p className="muted">No longer among the processes shown (it exited or left the top of the list).</p>
      )}
    </section>
  );
}
