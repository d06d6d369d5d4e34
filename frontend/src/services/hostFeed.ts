// The hand-over point between the dashboard's message batches and the host
// panels: the dashboard pushes every `processes` message here (one line in
// its batch handler); the processes hook listens. Outside React state, like
// the series store, so a 2 s stream does not re-render the dashboard.
import { parseProcessesData } from '../protocol/processes';
import type { ProcessesData } from '../protocol/hostTypes';

export interface HostFeed {
  /** Offer a server message; returns true when it was a process table. */
  push(msg: { type: string; data?: unknown }): boolean;
  /** Listen for process tables; returns the unsubscribe function. */
  subscribeProcesses(listener: (data: ProcessesData) => void): () => void;
  /** The newest table received, or null. */
  latestProcesses(): ProcessesData | null;
}

export function createHostFeed(): HostFeed {
  const listeners = new Set<(data: ProcessesData) => void>();
  let latest: ProcessesData | null = null;
  return {
    push(msg) {
      if (msg.type !== 'processes') return false;
      const data = parseProcessesData(msg.data);
      if (!data) return false;
      latest = data;
      for (const fn of [...listeners]) fn(data);
      return true;
    },
    subscribeProcesses(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    latestProcesses() {
      return latest;
    },
  };
}
