// HTTP side of the session: /api/login, /api/refresh, /api/logout.
//
// The access token is kept in memory (and, for a pasted token, in this tab's
// sessionStorage); the long-lived session is the HttpOnly refresh cookie the
// daemon sets on login, so a reload restores the session via /api/refresh.

import { toEpochMs } from '../protocol/parse';
import { decodeJwt, type JwtPayload } from './jwt';

export type SessionKind = 'password' | 'token';

/** The session the app keeps: the access token and who it speaks for. */
export interface Session {
  token: string;
  role: string;
  username: string;
  /** Epoch milliseconds, or null when the token says nothing. */
  expiresAt: number | null;
  kind: SessionKind;
}

/** The JSON answer of /api/login and /api/refresh. */
export interface LoginAnswer {
  access_token?: unknown;
  token_type?: string;
  expires_in?: number;
  expires_at?: string;
  role?: string;
  username?: string;
}

/** What the HTTP clients read of a fetch Response (tests answer with plain objects). */
export type FetchResponse = Pick<Response, 'ok' | 'status' | 'json'> & Partial<Pick<Response, 'statusText'>>;
export type FetchLike = (input: string, init?: RequestInit) => Promise<FetchResponse>;

/** Where a pasted token is kept (this tab's sessionStorage in the browser). */
export type TokenStorage = Pick<Storage, 'getItem' | 'setItem' | 'removeItem'>;

export interface AuthServiceOptions {
  fetchImpl?: FetchLike;
  storage?: TokenStorage | null;
}

export interface AuthService {
  login(username: string, password: string): Promise<Session>;
  refresh(): Promise<Session | null>;
  logout(): Promise<void>;
  rememberPastedToken(token: string): void;
  pastedToken(): string | null;
  forgetPastedToken(): void;
}

function claimString(v: unknown): string | undefined {
  return typeof v === 'string' && v ? v : undefined;
}

export const PASTED_TOKEN_KEY = 'dashd.pastedToken';

/** An HTTP error answer: `{"error": {"code", "message"}}` with a 4xx/5xx status. */
export class ApiError extends Error {
  status: number;
  code: string;

  constructor(status: number, code?: string | null, message?: string | null) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || 'http_error';
  }
}

/** An error answer as an ApiError carrying the daemon's code and one-line reason. */
export async function apiErrorFrom(res: FetchResponse): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string } } | null = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's HTML error page, an empty body).
  }
  const err = body && body.error;
  return new ApiError(res.status, err?.code, err?.message || res.statusText);
}

async function postJson(path: string, body: unknown, fetchImpl: FetchLike): Promise<LoginAnswer | null> {
  const res = await fetchImpl(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await apiErrorFrom(res);
  if (res.status === 204) return null;
  return res.json();
}

/**
 * Normalise a login/refresh answer into the session the app keeps:
 * `{token, role, username, expiresAt (ms), kind}`.
 */
export function sessionFromLogin(body: LoginAnswer | null, kind: SessionKind = 'password'): Session {
  if (!body || typeof body.access_token !== 'string') throw new ApiError(500, 'bad_response', 'no access_token in answer');
  const accessToken = body.access_token;
  const claims: JwtPayload = decodeJwt(accessToken) || {};
  let expiresAt = toEpochMs(body.expires_at);
  if (!Number.isFinite(expiresAt) && typeof body.expires_in === 'number' && Number.isFinite(body.expires_in)) expiresAt = Date.now() + body.expires_in * 1000;
  if (!Number.isFinite(expiresAt) && typeof claims.exp === 'number' && Number.isFinite(claims.exp)) expiresAt = claims.exp * 1000;
  return {
    token: accessToken,
    role: body.role || claimString(claims.role) || 'viewer',
    username: body.username || claimString(claims.sub) || 'unknown',
    expiresAt: Number.isFinite(expiresAt) ? expiresAt : null,
    kind,
  };
}

/** A session from a token pasted by an operator (no refresh possible). */
export function sessionFromToken(token: string | null | undefined): Session {
  const t = (token || '').trim().replace(/^Bearer\s+/i, '');
  const claims = decodeJwt(t);
  if (!claims) throw new ApiError(400, 'bad_token', 'That does not look like a dashd token (JWT).');
  const expiresAt = typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  if (expiresAt !== null && expiresAt <= Date.now()) throw new ApiError(401, 'expired', 'That token has expired.');
  return { token: t, role: claimString(claims.role) || 'viewer', username: claimString(claims.sub) || 'token', expiresAt, kind: 'token' };
}

export function createAuthService({ fetchImpl = (input, init) => fetch(input, init), storage = safeSessionStorage() }: AuthServiceOptions = {}): AuthService {
  return {
    async login(username: string, password: string) {
      return sessionFromLogin(await postJson('/api/login', { username, password }, fetchImpl), 'password');
    },
    /** A fresh access token from the refresh cookie, or null when there is no session. */
    async refresh() {
      try {
        return sessionFromLogin(await postJson('/api/refresh', undefined, fetchImpl), 'password');
      } catch (err) {
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return null;
        throw err;
      }
    },
    async logout() {
      try {
        await postJson('/api/logout', undefined, fetchImpl);
      } catch {
        // Best effort: the local session is dropped either way.
      }
      storage?.removeItem(PASTED_TOKEN_KEY);
    },
    rememberPastedToken(token: string) {
      storage?.setItem(PASTED_TOKEN_KEY, token);
    },
    pastedToken() {
      return storage?.getItem(PASTED_TOKEN_KEY) || null;
    },
    forgetPastedToken() {
      storage?.removeItem(PASTED_TOKEN_KEY);
    },
  };
}

function safeSessionStorage(): TokenStorage | null {
  try {
    return typeof window !== 'undefined' ? window.sessionStorage : null;
  } catch {
    return null; // storage disabled by browser policy
  }
}
