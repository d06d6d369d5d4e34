// The one owner of the dashboard's WebSocket, as a React hook.
//
// `useWebSocket(url, options)` creates one DashboardConnection per URL
// (connection/DashboardConnection.ts: socket lifecycle, auth, resume,
// requests) and mirrors its low-rate view (status, attempt, latency, rate,
// ack) into React state. The connection delegates like react-use-websocket:
// connection/heartbeat.ts (pings, latency, rates), connection/reconnectPolicy.ts
// (back-off with jitter, fast retries while someone looks, health probe) and
// connection/messageQueue.ts (stream messages handed to `options.onMessages`
// in one batch per animation frame, never one React update per message).
//
// Options live in a ref so the socket effect depends only on the URL.

import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import {
  DashboardConnection,
  INITIAL_VIEW,
  type ConnectionOptions,
  type ConnectionView,
  type RequestOptions,
} from '../connection/DashboardConnection';
import type { ReplyMap, RequestMap, RequestSender, RequestType } from '../protocol/types';

export {
  CLOSE_PING_TIMEOUT,
  CLOSE_UNAUTHORIZED,
  CONNECT_TIMEOUT_MS,
  DashboardConnection,
  MAX_AUTH_RETRIES,
  ProtocolError,
  REQUEST_TIMEOUT_MS,
  RESUME_TIMEOUT_MS,
  STATUS,
} from '../connection/DashboardConnection';
export type { ConnectionOptions, ConnectionView, Status } from '../connection/DashboardConnection';
export { PING_INTERVAL_MS, PONG_TIMEOUT_MS, RATE_WINDOW_MS, STATS_INTERVAL_MS } from '../connection/heartbeat';
export { FLUSH_FALLBACK_MS, scheduleAnimationFrame } from '../connection/messageQueue';
export { HEALTH_PATH, HEALTH_PROBE_MS, RECONNECT_VISIBLE_MAX_MS } from '../connection/reconnectPolicy';

/**
 * Send a request; resolves with the reply's `data`, rejects on `error`. A
 * request named in protocol/types.ts's RequestMap gets its typed reply.
 */
export interface SendRequest extends RequestSender {
  <T extends RequestType>(type: T, data: RequestMap[T], opts?: RequestOptions): Promise<ReplyMap[T]>;
  (type: string, data?: object, opts?: RequestOptions): Promise<Record<string, unknown>>;
}

export interface WebSocketHandle extends ConnectionView {
  send: SendRequest;
  /** Retry at once. */
  reconnect(): void;
  /** The last stream `seq` applied, or null. */
  lastSeq(): number | null;
}

/** React binding: one DashboardConnection per URL (null = disconnected). */
export function useWebSocket(url: string | null, options: ConnectionOptions = {}): WebSocketHandle {
  const optionsRef = useRef<ConnectionOptions>(options);
  useLayoutEffect(() => {
    optionsRef.current = options;
  });
  const [view, setView] = useState<ConnectionView>(INITIAL_VIEW);
  const connRef = useRef<DashboardConnection | null>(null);

  useEffect(() => {
    if (!url) {
      setView(INITIAL_VIEW);
      return undefined;
    }
    const conn = new DashboardConnection(url, optionsRef, setView);
    connRef.current = conn;
    conn.start();
    return () => {
      conn.stop();
      if (connRef.current === conn) connRef.current = null;
    };
  }, [url]);

  const send = useCallback((type: string, data?: object, opts?: RequestOptions) => {
    const conn = connRef.current;
    return conn ? conn.request(type, data, opts) : Promise.reject(new Error('not connected'));
  }, []) as SendRequest; // the wire's replies are trusted to match docs/protocol.md
  const reconnect = useCallback(() => connRef.current?.reconnectNow(), []);
  const lastSeq = useCallback(() => connRef.current?.lastSeq ?? null, []);

  return useMemo(() => ({ ...view, send, reconnect, lastSeq }), [view, send, reconnect, lastSeq]);
}

/** ws:// or wss:// URL for an endpoint path on the page's own origin. */
export function endpointUrl(path: string, loc: Pick<Location, 'protocol' | 'host'> | null = typeof window !== 'undefined' ? window.location : null): string | null {
  if (!loc) return null;
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}${path}`;
}
