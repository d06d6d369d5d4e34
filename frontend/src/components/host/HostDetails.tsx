// The host section of the dashboard (issue 19): processes, file systems,
// network interfaces, disks, services and containers, and sensors where the
// host has them. The Dashboard renders it with its store, socket and view
// settings and pushes `processes` messages into the HostFeed; everything
// else is read from the labelled series already in the series store.
//
// A panel shows when the server announces its families in `connection_ack`
// or when its series arrive; sensors only when the host has some.
import { memo, useId, useMemo } from 'react';
import { useHistoryFill, useHostIndex } from '../../hooks/useHostSeries';
import type { HostAckData, SendRequest } from '../../protocol/hostTypes';
import type { HostFeed } from '../../services/hostFeed';
import { disksOf, filesystemsOf, interfacesOf, isHostFamily, sensorsOf, servicesOf } from '../../services/hostModel';
import { roleAtLeast } from '../../services/roles';
import type { SeriesStore } from '../../services/seriesStore';
import DisksPanel from './DisksPanel';
import FilesystemsPanel from './FilesystemsPanel';
import InterfacesPanel from './InterfacesPanel';
import ProcessesPanel from './ProcessesPanel';
import SensorsPanel from './SensorsPanel';
import ServicesPanel from './ServicesPanel';
import './host.css';

export { default as ProcessesAtDialog } from './ProcessesAtDialog';
export { createHostFeed } from '../../services/hostFeed';
export { hostSubscription } from '../../services/hostModel';

/** The newest values are seeded from this much history (collectors run every 1–10 s by default). */
const SEED_FROM = '-2m';
const SEED_POINTS = 4;

export interface HostDetailsProps {
  store: SeriesStore;
  feed: HostFeed;
  send: SendRequest;
  ack: HostAckData | null;
  connected: boolean;
  role: string;
  /** The host shown (the daemon's own when null). */
  host: string | null;
  windowMs: number;
  paused: boolean;
  theme: string;
  gapMs?: number;
  /** Open the processes at a moment (the dashboard's ProcessesAtDialog). */
  onLookBack?: (timeMs: number) => void;
}

function HostDetails({ store, feed, send, ack, connected, role, host, windowMs, paused, theme, gapMs, onLookBack }: HostDetailsProps) {
  const headingId = useId();
  const index = useHostIndex(store);
  const announced = useMemo(() => new Set((ack?.families ?? []).map((f) => f.name).filter(isHostFamily)), [ack]);
  const seed = useMemo(() => [...announced].sort(), [announced]);
  useHistoryFill({ send, store: store, metrics: seed, from: SEED_FROM, maxPoints: SEED_POINTS, enabled: connected, host, seedOnly: true });

  const filesystems = useMemo(() => filesystemsOf(index), [index]);
  const interfaces = useMemo(() => interfacesOf(index), [index]);
  const disks = useMemo(() => disksOf(index), [index]);
  const services = useMemo(() => servicesOf(index), [index]);
  const sensors = useMemo(() => sensorsOf(index), [index]);
  const chart = { store, send, connected, host, windowMs, paused, theme, gapMs };
  const has = (family: string) => announced.has(family);

  return (
    <section className="host-details" aria-labelledby={headingId} data-testid="host-details">
      <h2 id={headingId} className="host-details-title">
        Host details
      </h2>
      <ProcessesPanel send={send} feed={feed} connected={connected} host={host} redacted={!roleAtLeast(role, 'operator')} paused={paused} onLookBack={onLookBack} />
      <div className="host-grid">
        {filesystems.length || has('disk_used_percent') ? <FilesystemsPanel filesystems={filesystems} /> : null}
        {interfaces.length || has('net_rx_bytes_per_second') ? <InterfacesPanel interfaces={interfaces} {...chart} /> : null}
        {disks.length || has('disk_io_read_bytes_per_second') ? <DisksPanel disks={disks} {...chart} /> : null}
        {services.length || has('cgroup_cpu_percent') ? <ServicesPanel services={services} /> : null}
        <SensorsPanel sensors={sensors} />
      </div>
    </section>
  );
}

// Re-rendered only when its own inputs change, not with every dashboard render.
export default memo(HostDetails);
