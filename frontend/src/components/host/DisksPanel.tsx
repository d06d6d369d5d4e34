// Disks: a chart of the chosen device's read and write rates, and a table of
// every device (rates, IOPS, busy %). On a phone: device, read, write.
import { useId, useState } from 'react';
import { formatSeriesName } from '../../protocol/series';
import type { Disk } from '../../services/hostModel';
import { formatBytesPerSecond } from '../../services/format';
import SeriesChartSelector, { type ChartContext } from './SeriesChartSelector';
import TableWrap from './TableWrap';

function iops(v: number | null): string {
  return v === null ? '—' : v.toFixed(v >= 10 ? 0 : 1);
}

export default function DisksPanel({ disks, ...chart }: { disks: readonly Disk[] } & ChartContext) {
  const headingId = useId();
  const [chosen, setChosen] = useState<string | null>(null);
  const names = disks.map((d) => d.device);
  const selected = chosen !== null && names.includes(chosen) ? chosen : names[0] ?? '';
  const read = formatSeriesName('disk_io_read_bytes_per_second', { device: selected });
  const write = formatSeriesName('disk_io_write_bytes_per_second', { device: selected });
  return (
    <section className="panel host-panel" aria-labelledby={headingId} data-testid="host-disks">
      <h3 id={headingId}>Disks</h3>
      {selected ? (
        <SeriesChartSelector
          {...chart}
          id="host-disk"
          label="Disk"
          options={names}
          selected={selected}
          onSelect={setChosen}
          title={`Disk ${selected}`}
          unit="B/s"
          metrics={[read, write]}
          labels={{ [read]: 'Read', [write]: 'Written' }}
        />
      ) : null}
      {disks.length ? (
        <TableWrap label="Disks table">
          <table className="host-table" data-testid="disks-table">
            <caption className="sr-only">Disks</caption>
            <thead>
              <tr>
                <th scope="col">Device</th>
                <th scope="col" className="num">Read</th>
                <th scope="col" className="num">Written</th>
                <th scope="col" className="num col-optional">Reads/s</th>
                <th scope="col" className="num col-optional">Writes/s</th>
                <th scope="col" className="num col-optional">Busy</th>
              </tr>
            </thead>
            <tbody>
              {disks.map((d) => (
                <tr key={d.device} data-device={d.device}>
                  <th scope="row">{d.device}</th>
                  <td className="num">{d.readBps === null ? '—' : formatBytesPerSecond(d.readBps, 1)}</td>
                  <td className="num">{d.writeBps === null ? '—' : formatBytesPerSecond(d.writeBps, 1)}</td>
                  <td className="num col-optional">{iops(d.readsPerSecond)}</td>
                  <td className="num col-optional">{iops(d.writesPerSecond)}</td>
                  <td className="num col-optional">{d.busyPercent === null ? '—' : `${d.busyPercent.toFixed(0)} %`}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : (
        <p className="muted">Waiting for the first reading…</p>
      )}
    </section>
  );
}
