// useAuth: restores a session on load (refresh cookie, else a token pasted in
// this tab), logs in and out, and turns a failed token refresh into
// `expired` without dropping the session the dashboard is showing.
import { act, cleanup, renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AuthService, Session } from '../services/authService';
import { AUTH, useAuth } from './useAuth';

const b64url = (o: unknown) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const jwt = (claims: Record<string, unknown>) => `${b64url({ alg: 'HS256' })}.${b64url(claims)}.sig`;
const FUTURE = Math.floor(Date.now() / 1000) + 3600;

const session = (token: string, kind: Session['kind'] = 'password'): Session => ({ token, role: 'operator', username: 'alice', expiresAt: null, kind });

function fakeService(over: Partial<AuthService> = {}) {
  let pasted: string | null = null;
  return {
    login: vi.fn(async (_u: string, _p: string) => session('login-token')),
    refresh: vi.fn(async (): Promise<Session | null> => null),
    logout: vi.fn(async () => undefined),
    pastedToken: vi.fn(() => pasted),
    rememberPastedToken: vi.fn((t: string) => {
      pasted = t;
    }),
    forgetPastedToken: vi.fn(() => {
      pasted = null;
    }),
    ...over,
  };
}

afterEach(cleanup);

describe('useAuth', () => {
  it('restores the session from the refresh cookie on load', async () => {
    const svc = fakeService({ refresh: vi.fn(async () => session('cookie-token')) });
    const { result } = renderHook(() => useAuth(svc));
    expect(result.current.status).toBe(AUTH.CHECKING);
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    expect(result.current.getToken()).toBe('cookie-token');
  });

  it('falls back to a token pasted earlier in this tab', async () => {
    const token = jwt({ sub: 'ops', role: 'viewer', exp: FUTURE });
    const svc = fakeService({ pastedToken: vi.fn(() => token) });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    expect(result.current.session?.username).toBe('ops');
    expect(result.current.session?.kind).toBe('token');
  });

  it('forgets a pasted token that is not a JWT and signs out', async () => {
    const svc = fakeService({ pastedToken: vi.fn(() => 'garbage') });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_OUT));
    expect(svc.forgetPastedToken).toHaveBeenCalled();
  });

  it('signs out with the error when the refresh call fails', async () => {
    const svc = fakeService({ refresh: vi.fn(async () => Promise.reject(new Error('network down'))) });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_OUT));
    expect(result.current.error).toBe('network down');
  });

  it('logs in, then logs out', async () => {
    const svc = fakeService();
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_OUT));
    await act(() => result.current.login('alice', 'pw'));
    expect(svc.login).toHaveBeenCalledWith('alice', 'pw');
    expect(result.current.status).toBe(AUTH.SIGNED_IN);
    expect(result.current.getToken()).toBe('login-token');
    await act(() => result.current.logout());
    expect(result.current.status).toBe(AUTH.SIGNED_OUT);
    expect(result.current.getToken()).toBeNull();
    expect(svc.logout).toHaveBeenCalled();
  });

  it('rejects a pasted token that is not a JWT without signing in', async () => {
    const svc = fakeService();
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_OUT));
    expect(() => result.current.signInWithToken('not-a-token')).toThrow(/JWT/);
    expect(result.current.status).toBe(AUTH.SIGNED_OUT);
    expect(svc.rememberPastedToken).not.toHaveBeenCalled();
  });

  it('hands the socket a fresh token from the refresh cookie', async () => {
    const refresh = vi.fn<() => Promise<Session | null>>().mockResolvedValueOnce(session('first')).mockResolvedValueOnce(session('second'));
    const svc = fakeService({ refresh });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    let token: string | null = null;
    await act(async () => {
      token = await result.current.refreshToken();
    });
    expect(token).toBe('second');
    expect(result.current.getToken()).toBe('second');
  });

  it('marks the session expired, keeping it, when the refresh fails', async () => {
    const refresh = vi.fn<() => Promise<Session | null>>().mockResolvedValueOnce(session('first')).mockResolvedValueOnce(null);
    const svc = fakeService({ refresh });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    let token: string | null = 'unset';
    await act(async () => {
      token = await result.current.refreshToken();
    });
    expect(token).toBeNull();
    expect(result.current.status).toBe(AUTH.EXPIRED);
    expect(result.current.session?.username).toBe('alice');
  });

  it('shares one refresh between concurrent callers', async () => {
    let release: (s: Session) => void = () => {};
    const refresh = vi
      .fn<() => Promise<Session | null>>()
      .mockResolvedValueOnce(session('first'))
      .mockImplementationOnce(() => new Promise<Session>((r) => (release = r)));
    const svc = fakeService({ refresh });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    let both: Array<string | null> = [];
    await act(async () => {
      const p = Promise.all([result.current.refreshToken(), result.current.refreshToken()]);
      release(session('shared'));
      both = await p;
    });
    expect(both).toEqual(['shared', 'shared']);
    expect(refresh).toHaveBeenCalledTimes(2);
  });

  it('never renews a pasted token: refreshToken forgets it and marks the session expired', async () => {
    const token = jwt({ sub: 'ops', role: 'viewer', exp: FUTURE });
    const svc = fakeService({ pastedToken: vi.fn(() => token) });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    expect(svc.refresh).toHaveBeenCalledTimes(1); // the cookie, on load only
    let renewed: string | null = 'unset';
    await act(async () => {
      renewed = await result.current.refreshToken();
    });
    expect(renewed).toBeNull();
    expect(svc.refresh).toHaveBeenCalledTimes(1);
    expect(svc.forgetPastedToken).toHaveBeenCalled();
    expect(result.current.status).toBe(AUTH.EXPIRED);
    expect(result.current.session?.username).toBe('ops');
  });

  it('marks a live session expired on request, and a new sign-in clears it', async () => {
    const svc = fakeService({ refresh: vi.fn(async () => session('cookie-token')) });
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_IN));
    act(() => result.current.markExpired());
    expect(result.current.status).toBe(AUTH.EXPIRED);
    expect(result.current.session?.token).toBe('cookie-token');
    await act(async () => {
      await result.current.login('alice', 'pw');
    });
    expect(result.current.status).toBe(AUTH.SIGNED_IN);
    expect(result.current.getToken()).toBe('login-token');
  });

  it('does nothing on markExpired when signed out', async () => {
    const svc = fakeService();
    const { result } = renderHook(() => useAuth(svc));
    await waitFor(() => expect(result.current.status).toBe(AUTH.SIGNED_OUT));
    act(() => result.current.markExpired());
    expect(result.current.status).toBe(AUTH.SIGNED_OUT);
    expect(await result.current.refreshToken()).toBeNull();
  });
});
