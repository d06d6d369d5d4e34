// HTTP side of the session: /api/login, /api/refresh, /api/logout.
//
// The access token is kept in memory (and, for a pasted token, in this tab's
// sessionStorage); the long-lived session is the HttpOnly refresh cookie the
// daemon sets on login, so a reload restores the session via /api/refresh.

import { decodeJwt, toEpochMs } from './dashboardService.js';

export const PASTED_TOKEN_KEY = 'dashd.pastedToken';

/** An HTTP error answer: `{"error": {"code", "message"}}` with a 4xx/5xx status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code || 'http_error';
  }
}

async function readError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's HTML error page, an empty body).
  }
  const err = body && body.error;
  return new ApiError(res.status, err?.code, err?.message || res.statusText);
}

async function postJson(path, body, fetchImpl) {
  const res = await fetchImpl(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await readError(res);
  if (res.status === 204) return null;
  return res.json();
}

/**
 * Normalise a login/refresh answer into the session the app keeps:
 * `{token, role, username, expiresAt (ms), kind}`.
 */
export function sessionFromLogin(body, kind = 'password') {
  if (!body || typeof body.access_token !== 'string') throw new ApiError(500, 'bad_response', 'no access_token in answer');
  const claims = decodeJwt(body.access_token) || {};
  let expiresAt = toEpochMs(body.expires_at);
  if (!Number.isFinite(expiresAt) && Number.isFinite(body.expires_in)) expiresAt = Date.now() + body.expires_in * 1000;
  if (!Number.isFinite(expiresAt) && Number.isFinite(claims.exp)) expiresAt = claims.exp * 1000;
  return {
    token: body.access_token,
    role: body.role || claims.role || 'viewer',
    username: body.username || claims.sub || 'unknown',
    expiresAt: Number.isFinite(expiresAt) ? expiresAt : null,
    kind,
  };
}

/** A session from a token pasted by an operator (no refresh possible). */
export function sessionFromToken(token) {
  const t = (token || '').trim().replace(/^Bearer\s+/i, '');
  const claims = decodeJwt(t);
  if (!claims) throw new ApiError(400, 'bad_token', 'That does not look like a dashd token (JWT).');
  const expiresAt = Number.isFinite(claims.exp) ? claims.exp * 1000 : null;
  if (expiresAt !== null && expiresAt <= Date.now()) throw new ApiError(401, 'expired', 'That token has expired.');
  return { token: t, role: claims.role || 'viewer', username: claims.sub || 'token', expiresAt, kind: 'token' };
}

export function createAuthService({ fetchImpl = (...a) => fetch(...a), storage = safeSessionStorage() } = {}) {
  return {
    async login(username, password) {
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
    rememberPastedToken(token) {
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

function safeSessionStorage() {
  try {
    return typeof window !== 'undefined' ? window.sessionStorage : null;
  } catch {
    return null; // storage disabled by browser policy
  }
}
