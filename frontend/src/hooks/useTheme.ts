// Light/dark theme: follows the system (prefers-color-scheme) unless the user
// picks one; the choice is remembered in localStorage and applied as
// <html data-theme="light|dark"> so CSS variables switch in one place.

import { useCallback, useEffect, useState } from 'react';

export const THEME_KEY = 'dashd.theme';
export const THEME_CHOICES = ['system', 'light', 'dark'] as const;
export type ThemePreference = (typeof THEME_CHOICES)[number];
export type Theme = 'light' | 'dark';

function isChoice(v: unknown): v is ThemePreference {
  return (THEME_CHOICES as readonly unknown[]).includes(v);
}

function readPreference(): ThemePreference {
  try {
    const v = window.localStorage.getItem(THEME_KEY);
    return isChoice(v) ? v : 'system';
  } catch {
    return 'system';
  }
}

function systemTheme(): Theme {
  return typeof window !== 'undefined' && window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function useTheme(): { preference: ThemePreference; resolved: Theme; setPreference: (p: string) => void } {
  const [preference, setPreferenceState] = useState(readPreference);
  const [system, setSystem] = useState(systemTheme);

  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return undefined;
    const onChange = (e: MediaQueryListEvent) => setSystem(e.matches ? 'dark' : 'light');
    mq.addEventListener('change', onChange);
    return () => mq.removeEventListener('change', onChange);
  }, []);

  const resolved = preference === 'system' ? system : preference;

  useEffect(() => {
    document.documentElement.dataset.theme = resolved;
    document.documentElement.style.colorScheme = resolved;
  }, [resolved]);

  const setPreference = useCallback((p: string) => {
    if (!isChoice(p)) return;
    setPreferenceState(p);
    try {
      if (p === 'system') window.localStorage.removeItem(THEME_KEY);
      else window.localStorage.setItem(THEME_KEY, p);
    } catch {
      // Storage may be disabled; the choice still holds for this page.
    }
  }, []);

  return { preference, resolved, setPreference };
}
