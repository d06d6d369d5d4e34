// The processes stream of one host (issue 19): `processes_subscribe` while
// the panel is shown and connected (again when the order changes or after a
// reconnect), `processes_unsubscribe` when it goes. Tables arrive through the
// HostFeed the dashboard fills; a server without the stream answers the
// subscribe with an error and the panel says so instead of waiting forever.
import { useEffect, useLayoutEffect, useRef, useState } from 'react';
import { ProtocolError } from '../connection/DashboardConnection';
import { parseProcessesData } from '../protocol/processes';
import type { ProcessSort, ProcessesData, SendRequest } from '../protocol/hostTypes';
import type { HostFeed } from '../services/hostFeed';

/** Rows asked for: the server's default top N. */
export const PROCESS_LIMIT = 50;

export type ProcessesStatus = 'idle' | 'waiting' | 'live' | 'unavailable';

export interface ProcessesState {
  status: ProcessesStatus;
  data: ProcessesData | null;
  /** Why the stream is unavailable (the server's error message). */
  error: string | null;
}

export interface UseProcessesOptions {
  send: SendRequest;
  feed: HostFeed;
  connected: boolean;
  sort: ProcessSort;
  /** The host shown; tables of other hosts are ignored. Null: any. */
  host: string | null;
  limit?: number;
  /** While paused the table shown stays as it is (the dashboard's pause). */
  paused?: boolean;
}

const IDLE: ProcessesState = { status: 'idle', data: null, error: null };

function initialState(feed: HostFeed, host: string | null): ProcessesState {
  const latest = feed.latestProcesses();
  return latest && (!host || !latest.host || latest.host === host) ? { status: 'live', data: latest, error: null } : IDLE;
}

export function useProcesses({ send, feed, connected, sort, host, limit = PROCESS_LIMIT, paused = false }: UseProcessesOptions): ProcessesState {
  const [state, setState] = useState<ProcessesState>(() => initialState(feed, host));
  const pausedRef = useRef(paused);
  useLayoutEffect(() => {
    pausedRef.current = paused;
  });

  useEffect(() => {
    if (!connected) return undefined;
    let active = true;
    const accept = (data: ProcessesData) => {
      if (!active || pausedRef.current || (host && data.host && data.host !== host)) return;
      setState({ status: 'live', data, error: null });
    };
    setState((s) => ({ status: s.data ? s.status : 'waiting', data: s.data, error: null }));
    const unsubscribe = feed.subscribeProcesses(accept);
    // With the host named, a node that streams only its own processes says so
    // (not_found) when another host (an agent) is shown, rather than leave the
    // panel waiting.
    send('processes_subscribe', host ? { sort, limit, host } : { sort, limit }).then(
      (reply) => {
        // A server may answer with the first table itself.
        const data = parseProcessesData(reply);
        if (data) accept(data);
      },
      (err: unknown) => {
        // An error frame means no stream here; a timeout or a drop does not
        // (tables may still come, and a reconnect subscribes again).
        if (active && err instanceof ProtocolError) setState({ status: 'unavailable', data: null, error: err.message || err.code });
      },
    );
    return () => {
      active = false;
      unsubscribe();
      send('processes_unsubscribe', {}).catch(() => {});
    };
  }, [send, feed, connected, sort, host, limit]);

  return state;
}
