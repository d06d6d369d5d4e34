// Small persisted UI preferences (localStorage). Reading never throws: a
// private window, a full quota or a value from an older version falls back.

/** The stored value parsed by `parse` (undefined = invalid), or `fallback`. */
export function readPreference<T>(key: string, parse: (raw: string) => T | undefined, fallback: T): T {
  try {
    const raw = window.localStorage.getItem(key);
    if (raw === null) return fallback;
    const v = parse(raw);
    return v === undefined ? fallback : v;
  } catch {
    return fallback;
  }
}

export function writePreference(key: string, value: string): void {
  try {
    window.localStorage.setItem(key, value);
  } catch {
    // ignore: a preference only
  }
}
