// Network interfaces: a chart of the chosen interface's receive and send
// rates, and a table of every interface (link, speed, rates, errors and
// drops). On a phone the table keeps the name and the two rates.
import { useId, useState } from 'react';
import { formatSeriesName } from '../../protocol/series';
import type { NetInterface } from '../../services/hostModel';
import { formatBytesPerSecond } from '../../services/format';
import SeriesChartSelector, { type ChartContext } from './SeriesChartSelector';
import TableWrap from './TableWrap';

function perSecond(v: number | null): string {
  return v === null ? '—' : `${v.toFixed(v >= 10 ? 0 : 1)}/s`;
}

function link(i: NetInterface): string {
  const state = i.up === null ? '—' : i.up ? 'up' : 'down';
  return i.speedMbps ? `${state}, ${i.speedMbps >= 1000 ? `${i.speedMbps / 1000} Gbit/s` : `${i.speedMbps} Mbit/s`}` : state;
}

export default function InterfacesPanel({ interfaces, ...chart }: { interfaces: readonly NetInterface[] } & ChartContext) {
  const headingId = useId();
  const [chosen, setChosen] = useState<string | null>(null);
  const names = interfaces.map((i) => i.iface);
  const selected = chosen !== null && names.includes(chosen) ? chosen : names[0] ?? '';
  const rx = formatSeriesName('net_rx_bytes_per_second', { iface: selected });
  const tx = formatSeriesName('net_tx_bytes_per_second', { iface: selected });
  return (
    <section className="panel host-panel" aria-labelledby={headingId} data-testid="host-interfaces">
      <h3 id={headingId}>Network interfaces</h3>
      {selected ? (
        <SeriesChartSelector
          {...chart}
          id="host-net"
          label="Interface"
          options={names}
          selected={selected}
          onSelect={setChosen}
          title={`Interface ${selected}`}
          unit="B/s"
          metrics={[rx, tx]}
          labels={{ [rx]: 'Received', [tx]: 'Sent' }}
        />
      ) : null}
      {interfaces.length ? (
        <TableWrap label="Network interfaces table">
          <table className="host-table" data-testid="interfaces-table">
            <caption className="sr-only">Network interfaces</caption>
            <thead>
              <tr>
                <th scope="col">Interface</th>
                <th scope="col" className="col-optional">Link</th>
                <th scope="col" className="num">Received</th>
                <th scope="col" className="num">Sent</th>
                <th scope="col" className="num col-optional">Packets in/out</th>
                <th scope="col" className="num col-optional">Errors</th>
                <th scope="col" className="num col-optional">Drops</th>
              </tr>
            </thead>
            <tbody>
              {interfaces.map((i) => (
                <tr key={i.iface} data-iface={i.iface}>
                  <th scope="row">{i.iface}</th>
                  <td className={`col-optional${i.up === false ? ' text-crit' : ''}`}>{link(i)}</td>
                  <td className="num">{i.rxBps === null ? '—' : formatBytesPerSecond(i.rxBps, 1)}</td>
                  <td className="num">{i.txBps === null ? '—' : formatBytesPerSecond(i.txBps, 1)}</td>
                  <td className="num col-optional">
                    {perSecond(i.rxPackets)} / {perSecond(i.txPackets)}
                  </td>
                  <td className={`num col-optional${i.errors ? ' text-crit' : ''}`}>{perSecond(i.errors)}</td>
                  <td className={`num col-optional${i.drops ? ' text-warn' : ''}`}>{perSecond(i.drops)}</td>
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
