// Session state for the dashboard: restore on load (refresh cookie or a token
// pasted earlier in this tab), log in, log out, and refresh the access token
// for the socket. Expiry does not unmount the dashboard: the session is marked
// `expired` and the app shows the login form over the live view.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createAuthService, sessionFromToken, type AuthService, type Session } from '../services/authService';

export const AUTH = Object.freeze({
  CHECKING: 'checking',
  SIGNED_OUT: 'signedOut',
  SIGNED_IN: 'signedIn',
  EXPIRED: 'expired',
} as const);

export type AuthStatus = (typeof AUTH)[keyof typeof AUTH];

export interface AuthState {
  status: AuthStatus;
  session: Session | null;
  error: string | null;
}

export interface Auth extends AuthState {
  login(username: string, password: string): Promise<Session>;
  signInWithToken(token: string): Session;
  logout(): Promise<void>;
  /** For the socket: a fresh token, or null (then the session is `expired`). */
  refreshToken(): Promise<string | null>;
  getToken(): string | null;
  markExpired(): void;
}

export function useAuth(service?: AuthService | null): Auth {
  const svc = useMemo(() => service || createAuthService(), [service]);
  const [state, setState] = useState<AuthState>({ status: AUTH.CHECKING, session: null, error: null });
  const sessionRef = useRef<Session | null>(null);
  const refreshInFlight = useRef<Promise<Session | null> | null>(null);

  const adopt = useCallback((session: Session) => {
    sessionRef.current = session;
    setState({ status: AUTH.SIGNED_IN, session, error: null });
  }, []);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      let session: Session | null = null;
      let error: string | null = null;
      try {
        session = await svc.refresh();
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
      if (!session) {
        const pasted = svc.pastedToken();
        if (pasted) {
          try {
            session = sessionFromToken(pasted);
          } catch {
            svc.forgetPastedToken();
          }
        }
      }
      if (cancelled) return;
      if (session) adopt(session);
      else setState({ status: AUTH.SIGNED_OUT, session: null, error });
    })();
    return () => {
      cancelled = true;
    };
  }, [svc, adopt]);

  const login = useCallback(
    async (username: string, password: string) => {
      const session = await svc.login(username, password);
      svc.forgetPastedToken();
      adopt(session);
      return session;
    },
    [svc, adopt],
  );

  const signInWithToken = useCallback(
    (token: string) => {
      const session = sessionFromToken(token);
      svc.rememberPastedToken(session.token);
      adopt(session);
      return session;
    },
    [svc, adopt],
  );

  const logout = useCallback(async () => {
    sessionRef.current = null;
    setState({ status: AUTH.SIGNED_OUT, session: null, error: null });
    await svc.logout();
  }, [svc]);

  /** For the socket: a fresh token, or null (then the session is `expired`). */
  const refreshToken = useCallback(async (): Promise<string | null> => {
    const current = sessionRef.current;
    if (!current) return null;
    if (!refreshInFlight.current) {
      refreshInFlight.current = (async () => {
        if (current.kind !== 'password') return null;
        try {
          return await svc.refresh();
        } catch {
          return null;
        }
      })().finally(() => {
        refreshInFlight.current = null;
      });
    }
    const session = await refreshInFlight.current;
    if (session) {
      adopt(session);
      return session.token;
    }
    if (current.kind === 'token') svc.forgetPastedToken();
    setState((s) => (s.session ? { ...s, status: AUTH.EXPIRED } : s));
    return null;
  }, [svc, adopt]);

  const getToken = useCallback((): string | null => sessionRef.current?.token ?? null, []);

  const markExpired = useCallback(() => {
    setState((s) => (s.session ? { ...s, status: AUTH.EXPIRED } : s));
  }, []);

  return { ...state, login, signInWithToken, logout, refreshToken, getToken, markExpired };
}
