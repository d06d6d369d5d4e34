import { describe, expect, it, vi } from 'vitest';
import { ApiError, createAuthService, sessionFromLogin, sessionFromToken, type TokenStorage } from './authService';

const b64url = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const jwt = (claims: object) => `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(claims)}.c2ln`;

function jsonResponse(status: number, body: unknown) {
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: String(status),
    json: async () => {
      if (body === undefined) throw new SyntaxError('no body');
      return body;
    },
  };
}

function memoryStorage(): TokenStorage {
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

const LOGIN_BODY = {
  access_token: jwt({ sub: 'alice', role: 'operator', exp: 2_000_000_000 }),
  token_type: 'Bearer',
  expires_in: 3600,
  expires_at: '2033-05-18T03:33:20.000Z',
  role: 'operator',
  username: 'alice',
};

describe('auth service', () => {
  it('logs in with a JSON body and keeps the cookie (same-origin credentials)', async () => {
    const fetchImpl = vi.fn(async (_path: string, _init?: RequestInit) => jsonResponse(200, LOGIN_BODY));
    const svc = createAuthService({ fetchImpl, storage: memoryStorage() });
    const session = await svc.login('alice', 's3cret');
    const [path, init] = fetchImpl.mock.calls[0];
    expect(path).toBe('/api/login');
    expect(init?.method).toBe('POST');
    expect(init?.credentials).toBe('same-origin');
    expect(JSON.parse(String(init?.body))).toEqual({ username: 'alice', password: 's3cret' });
    expect(session).toEqual({
      token: LOGIN_BODY.access_token,
      role: 'operator',
      username: 'alice',
      expiresAt: Date.parse('2033-05-18T03:33:20.000Z'),
      kind: 'password',
    });
  });

  it('turns an error answer into an ApiError with its code', async () => {
    const fetchImpl = async () => jsonResponse(401, { error: { code: 'unauthorized', message: 'bad credentials' } });
    const svc = createAuthService({ fetchImpl, storage: memoryStorage() });
    const err = await svc.login('alice', 'nope').catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(401);
    expect(err.code).toBe('unauthorized');
    expect(err.message).toBe('bad credentials');
  });

  it('survives a non-JSON error page', async () => {
    const svc = createAuthService({ fetchImpl: async () => jsonResponse(502, undefined), storage: memoryStorage() });
    const err = await svc.login('a', 'b').catch((e) => e);
    expect(err.status).toBe(502);
  });

  it('refresh returns null without a session and a session with one', async () => {
    const none = createAuthService({ fetchImpl: async () => jsonResponse(401, { error: { code: 'unauthorized' } }), storage: memoryStorage() });
    expect(await none.refresh()).toBeNull();
    const some = createAuthService({ fetchImpl: async () => jsonResponse(200, LOGIN_BODY), storage: memoryStorage() });
    expect((await some.refresh())?.username).toBe('alice');
  });

  it('refresh rethrows server failures (not a missing session)', async () => {
    const svc = createAuthService({ fetchImpl: async () => jsonResponse(503, { error: { code: 'unavailable' } }), storage: memoryStorage() });
    await expect(svc.refresh()).rejects.toMatchObject({ status: 503 });
  });

  it('logout posts and forgets a pasted token even when the server fails', async () => {
    const storage = memoryStorage();
    const fetchImpl = vi.fn(async () => {
      throw new TypeError('network down');
    });
    const svc = createAuthService({ fetchImpl, storage });
    svc.rememberPastedToken('t');
    await svc.logout();
    expect(fetchImpl).toHaveBeenCalledWith('/api/logout', expect.objectContaining({ method: 'POST' }));
    expect(svc.pastedToken()).toBeNull();
  });
});

describe('sessions', () => {
  it('falls back to expires_in and token claims', () => {
    const now = Date.now();
    const s = sessionFromLogin({ access_token: jwt({ sub: 'bob', role: 'viewer' }), expires_in: 60 });
    expect(s.role).toBe('viewer');
    expect(s.username).toBe('bob');
    expect(s.expiresAt).toBeGreaterThanOrEqual(now + 60_000);
  });

  it('accepts a pasted token with or without "Bearer"', () => {
    const token = jwt({ sub: 'ci', role: 'admin', exp: 2_000_000_000 });
    expect(sessionFromToken(`Bearer ${token}\n`)).toEqual({ token, role: 'admin', username: 'ci', expiresAt: 2_000_000_000_000, kind: 'token' });
  });

  it('rejects garbage and expired pasted tokens', () => {
    expect(() => sessionFromToken('hello')).toThrow(/JWT/);
    expect(() => sessionFromToken(jwt({ sub: 'x', exp: 1 }))).toThrow(/expired/);
  });
});
