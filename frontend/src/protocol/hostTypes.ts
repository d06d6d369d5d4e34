// Wire types of the host views (issue 19): the family catalogue in
// `connection_ack`, the `processes` stream and the `processes_at` look-back
// (docs/protocol.md). Kept apart from types.ts so the host panels can grow
// without touching the seed protocol's types.
import type { ConnectionAckData, IsoTime } from './types';

/** One metric family of the catalogue: its unit, kind and the label values seen. */
export interface FamilyInfo {
  name: string;
  unit: string;
  kind: 'gauge' | 'counter' | 'rate' | string;
  description?: string;
  /** Label name -> the values the server holds, e.g. `{mount: ['/', '/var']}`. */
  labels: Record<string, string[]>;
}

/** `connection_ack` data of a server that announces labelled families. */
export type HostAckData = ConnectionAckData & { families?: FamilyInfo[] };

export const PROCESS_SORTS = ['cpu', 'memory', 'io'] as const;
/** The orders the server keeps a top N for. */
export type ProcessSort = (typeof PROCESS_SORTS)[number];

/** One process row, normalised (times in epoch ms, rates null while unknown). */
export interface ProcessRow {
  pid: number;
  ppid: number;
  name: string;
  /** Absent for viewers (user names can carry secrets). */
  user: string | null;
  state: string;
  /** % of one core; null on the first reading of a process. */
  cpu_percent: number | null;
  memory_percent: number;
  rss: number;
  threads: number;
  read_bytes_per_second: number | null;
  write_bytes_per_second: number | null;
  /** Start time, epoch ms (NaN when the server did not say). */
  started: number;
  /** Absent for viewers and when the server's setting turns command lines off. */
  cmdline: string | null;
}

/** A `processes` stream message or a `processes_at` reply, normalised. */
export interface ProcessesData {
  /** Epoch ms of the snapshot (for processes_at: the nearest one held). */
  timestamp: number;
  host: string | null;
  sort: ProcessSort;
  /** Every process on the host, not only the rows sent. */
  total: number;
  running: number;
  processes: ProcessRow[];
}

/** Requests of the host views: type -> data. */
export interface HostRequestMap {
  processes_subscribe: { sort: ProcessSort; limit: number; host?: string };
  processes_unsubscribe: Record<string, never>;
  processes_at: { time: IsoTime; host?: string; sort?: ProcessSort };
}

/** The socket's send, as the host views use it (useWebSocket's `send`). */
export type SendRequest = (type: string, data?: object) => Promise<Record<string, unknown>>;
