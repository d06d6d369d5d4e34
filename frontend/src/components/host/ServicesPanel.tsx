// Services and containers (control groups): CPU, memory used of its limit,
// I/O and pids per systemd unit or container, busiest first; the first
// SHOWN rows, the rest behind "Show all". Phone: name, CPU, memory.
import { useId, useState } from 'react';
import type { CgroupRow } from '../../services/hostModel';
import { formatBytes, formatBytesPerSecond } from '../../services/format';
import TableWrap from './TableWrap';

export const SHOWN = 15;

function memory(r: CgroupRow): string {
  if (r.memoryUsedBytes === null) return '—';
  return r.memoryLimitBytes === null ? formatBytes(r.memoryUsedBytes, 1) : `${formatBytes(r.memoryUsedBytes, 1)} / ${formatBytes(r.memoryLimitBytes, 1)}`;
}

function io(r: CgroupRow): string {
  if (r.ioReadBps === null && r.ioWriteBps === null) return '—';
  return `${formatBytesPerSecond(r.ioReadBps ?? 0, 1)} / ${formatBytesPerSecond(r.ioWriteBps ?? 0, 1)}`;
}

export default function ServicesPanel({ services }: { services: readonly CgroupRow[] }) {
  const headingId = useId();
  const [all, setAll] = useState(false);
  const rows = all ? services : services.slice(0, SHOWN);
  return (
    <section className="panel host-panel" aria-labelledby={headingId} data-testid="host-services">
      <h3 id={headingId}>Services and containers</h3>
      {services.length ? (
        <>
          <TableWrap label="Services and containers table">
            <table className="host-table" data-testid="services-table">
              <caption className="sr-only">Services and containers, busiest first</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col" className="col-optional">Kind</th>
                  <th scope="col" className="num">CPU %</th>
                  <th scope="col" className="num">Memory</th>
                  <th scope="col" className="num col-optional">I/O read / write</th>
                  <th scope="col" className="num col-optional">Pids</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.cgroup} data-cgroup={r.cgroup}>
                    <th scope="row" className="proc-name">
                      <span className="cell-clip" title={r.cgroup}>{r.name}</span>
                    </th>
                    <td className="col-optional">{r.kind}</td>
                    <td className="num">{r.cpuPercent === null ? '—' : r.cpuPercent.toFixed(1)}</td>
                    <td className="num">{memory(r)}</td>
                    <td className="num col-optional">{io(r)}</td>
                    <td className="num col-optional">{r.pids === null ? '—' : r.pids}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          {services.length > SHOWN ? (
            <button type="button" className="btn btn-small" aria-expanded={all} onClick={() => setAll((a) => !a)}>
              {all ? `Show the top ${SHOWN}` : `Show all ${services.length}`}
            </button>
          ) : null}
        </>
      ) : (
        <p className="muted">Waiting for the first reading…</p>
      )}
    </section>
  );
}
