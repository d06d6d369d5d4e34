import { describe, expect, it } from 'vitest';
import { decodeJwt } from './jwt';

describe('decodeJwt', () => {
  const b64url = (o: unknown) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  it('reads the payload of a token', () => {
    const token = `${b64url({ alg: 'HS256' })}.${b64url({ sub: 'alice', role: 'admin', exp: 2_000_000_000 })}.sig`;
    expect(decodeJwt(token)).toEqual({ sub: 'alice', role: 'admin', exp: 2_000_000_000 });
  });
  it('returns null for anything else', () => {
    expect(decodeJwt('abc')).toBeNull();
    expect(decodeJwt('a.b.c')).toBeNull();
    expect(decodeJwt(null)).toBeNull();
  });
});
