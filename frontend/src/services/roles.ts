// Role ranks: what a role may see and do in the page (the server enforces).

const ROLE_RANK: Readonly<Record<string, number>> = { viewer: 1, operator: 2, admin: 3, agent: 0 };

/** True when `role` ranks at least `needed`; unknown roles rank nothing. */
export function roleAtLeast(role: string | null | undefined, needed: string): boolean {
  return (ROLE_RANK[role ?? ''] ?? 0) >= (ROLE_RANK[needed] ?? 99);
}
