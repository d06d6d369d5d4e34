import { describe, expect, it } from 'vitest';
import { roleAtLeast } from './roles';

describe('roles', () => {
  it('orders viewer < operator < admin', () => {
    expect(roleAtLeast('operator', 'operator')).toBe(true);
    expect(roleAtLeast('admin', 'operator')).toBe(true);
    expect(roleAtLeast('viewer', 'operator')).toBe(false);
    expect(roleAtLeast(undefined, 'viewer')).toBe(false);
  });
});
