// Sensors where the host has them: temperatures against the chip's own high
// and critical thresholds, fans, batteries. A host without sensors has no
// such series, and then there is no panel at all (null).
import { useId } from 'react';
import { temperatureLevel, type Sensors } from '../../services/hostModel';
import TableWrap from './TableWrap';

function celsius(v: number | null): string {
  return v === null ? '—' : `${v.toFixed(1)} °C`;
}

export default function SensorsPanel({ sensors }: { sensors: Sensors }) {
  const headingId = useId();
  const { temperatures, fans, batteries } = sensors;
  if (!temperatures.length && !fans.length && !batteries.length) return null;
  return (
    <section className="panel host-panel" aria-labelledby={headingId} data-testid="host-sensors">
      <h3 id={headingId}>Sensors</h3>
      {temperatures.length ? (
        <TableWrap label="Temperatures table">
          <table className="host-table" data-testid="temperatures-table">
            <caption className="sr-only">Temperatures</caption>
            <thead>
              <tr>
                <th scope="col">Sensor</th>
                <th scope="col" className="num">Temperature</th>
                <th scope="col" className="num col-optional">High</th>
                <th scope="col" className="num col-optional">Critical</th>
              </tr>
            </thead>
            <tbody>
              {temperatures.map((t) => {
                const level = temperatureLevel(t);
                return (
                  <tr key={`${t.chip}/${t.sensor}`}>
                    <th scope="row">
                      {t.chip} · {t.sensor}
                    </th>
                    <td className={`num${level === 'ok' ? '' : ` text-${level}`}`}>
                      {celsius(t.celsius)}
                      {level === 'ok' ? null : <span className="sr-only">{level === 'crit' ? ' (critical)' : ' (high)'}</span>}
                    </td>
                    <td className="num col-optional">{celsius(t.highCelsius)}</td>
                    <td className="num col-optional">{celsius(t.criticalCelsius)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
      {fans.length || batteries.length ? (
        <ul className="sensor-list">
          {fans.map((f) => (
            <li key={`fan ${f.chip}/${f.sensor}`}>
              Fan {f.chip} · {f.sensor}: {Math.round(f.rpm)} rpm
            </li>
          ))}
          {batteries.map((b) => (
            <li key={`battery ${b.battery}`}>
              Battery {b.battery}: {b.percent.toFixed(0)} %{b.charging === null ? '' : b.charging ? ', charging' : ', on battery'}
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
