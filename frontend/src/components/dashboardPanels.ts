// Panels the dashboard shows below its charts, in order. A new panel is one
// entry here: its component gets the view (range, host) and the socket.

import type { ReactNode } from 'react';
import type { Span, ViewRange } from '../services/timeRange';
import type { WebSocketHandle } from '../hooks/useWebSocket';

export interface PanelContext {
  /** Send a request over the dashboard's socket. */
  send: WebSocketHandle['send'];
  connected: boolean;
  /** The host shown (the daemon's own when the view names none). */
  host: string | null;
  range: ViewRange;
  /** The past range shown, or null while live. */
  span: Span | null;
  theme: string;
}

export interface DashboardPanel {
  id: string;
  render(ctx: PanelContext): ReactNode;
}

export const DASHBOARD_PANELS: DashboardPanel[] = [];
