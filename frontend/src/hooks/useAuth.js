// Session state for the dashboard: restore on load (refresh cookie or a token
// pasted earlier in this tab), log in, log out, and refresh the access token
// for the socket. Expiry does not unmount the dashboard: the session is marked
// `expired` and the app shows the login form over the live view.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createAuthService, sessionFromToken } from '../services/authService.js';

export const AUTH = Object.freeze({
  CHECKING: 'checking',
  SIGNED_OUT: 'signedOut',
  SIGNED_IN: 'signedIn',
  EXPIRED: 'expired',
});

export function useAuth(service) {
  const svc = useMemo(() => service || createAuthService(), [service]);
  const [state, setState] = useState({ status: AUTH.CHECKING, session: null, error: null });
  const sessionRef = useRef(null);
  const refreshInFlight = useRef(null);

  const adopt = useCallback((session) => {
    sessionRef.current = session;
    setState({ status: AUTH.SIGNED_IN, session, error: null });
  }, []);

  useEffect(() => {
    let cancelled = false;
    (async () => {
      let session = null;
      let error = null;
      try {
        session = await svc.refresh();
      } catch (err) {
        error = err.message;
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
    async (username, password) => {
      const session = await svc.login(username, password);
      svc.forgetPastedToken();
      adopt(session);
      return session;
    },
    [svc, adopt],
  );

  const signInWithToken = useCallback(
    (token) => {
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
  const refreshToken = useCallback(async () => {
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

  const getToken = useCallback(() => sessionRef.current?.token ?? null, []);

  const markExpired = useCallback(() => {
    setState((s) => (s.session ? { ...s, status: AUTH.EXPIRED } : s));
  }, []);

  return { ...state, login, signInWithToken, logout, refreshToken, getToken, markExpired };
}
