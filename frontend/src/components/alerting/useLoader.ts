// Loads something from the alerting API, with a reload function and the
// error's message; ignores answers that arrive after unmount.

import { useCallback, useEffect, useRef, useState } from 'react';

export interface LoaderState<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
}

export interface Loader<T> extends LoaderState<T> {
  reload(): Promise<void>;
}

/** The message of anything thrown: an Error's message, else its text. */
export function errorText(err: unknown): string {
  return (err instanceof Error && err.message) || String(err);
}

export function useLoader<T>(load: () => Promise<T | null>): Loader<T> {
  const [state, setState] = useState<LoaderState<T>>({ data: null, error: null, loading: true });
  const alive = useRef(true);
  const reload = useCallback(async () => {
    setState((s) => ({ ...s, loading: true }));
    try {
      const data = await load();
      if (alive.current) setState({ data, error: null, loading: false });
    } catch (err) {
      if (alive.current) setState((s) => ({ data: s.data, error: errorText(err), loading: false }));
    }
  }, [load]);
  useEffect(() => {
    alive.current = true;
    reload();
    return () => {
      alive.current = false;
    };
  }, [reload]);
  return { ...state, reload };
}

export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}
