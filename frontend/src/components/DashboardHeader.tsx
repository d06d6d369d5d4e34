// The top bar: brand and host, connection status, the notifications bell,
// the administration switch, the controls menu (phones) and the account.

import ConnectionStatus from './ConnectionStatus';
import type { WebSocketHandle } from '../hooks/useWebSocket';

export interface DashboardHeaderProps {
  host: string | null;
  ws: WebSocketHandle;
  unread: number;
  isAdmin: boolean;
  adminView: boolean;
  onAdminView(): void;
  controlsOpen: boolean;
  onControls(): void;
  username: string | undefined;
  role: string;
  onLogout(): void;
}

export default function DashboardHeader({ host, ws, unread, isAdmin, adminView, onAdminView, controlsOpen, onControls, username, role, onLogout }: DashboardHeaderProps) {
  return (
    <header className="topbar">
      <h1 className="brand">
        <span className="brand-mark" aria-hidden="true">◆</span>
        <span className="brand-name">dashd</span>
        {host ? <span className="brand-host"><span className="sr-only">, host </span>{host}</span> : null}
      </h1>
      <ConnectionStatus view={ws} onRetry={ws.reconnect} />
      <nav className="topbar-actions" aria-label="Account and panels">
        <a className="icon-btn bell" href="#notifications" aria-label={`Notifications, ${unread} unread`}>
          <svg width="20" height="20" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
            <path
              fill="currentColor"
              d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
            />
          </svg>
          {unread ? <span className="bell-count" aria-hidden="true">{unread > 99 ? '99+' : unread}</span> : null}
        </a>
        {isAdmin ? (
          <button type="button" className="btn view-btn" aria-pressed={adminView} onClick={onAdminView}>
            {adminView ? 'Dashboard' : 'Administration'}
          </button>
        ) : null}
        <button type="button" className="btn menu-btn" aria-expanded={controlsOpen} aria-controls="controls" onClick={onControls}>
          ☰ Controls
        </button>
        <span className="user" title={`signed in as ${username} (${role})`}>
          <span className="user-name">{username}</span>
          <span className={`role role-${role}`}>{role}</span>
        </span>
        <button type="button" className="btn" onClick={onLogout}>
          Sign out
        </button>
      </nav>
    </header>
  );
}
