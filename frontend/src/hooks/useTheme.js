// Light/dark theme: follows the system (prefers-color-scheme) unless the user
// picks one; the choice is remembered in localStorage and applied as
// <html data-theme="light|dark"> so CSS variables switch in one place.

import { useCallback, useEffect, useState } from 'react';

export const THEME_KEY = 'dashd.theme';
export const THEME_CHOICES = ['system', 'light', 'dark'];

function readPreference() {
  try {
    const v = window.localStorage.getItem(THEME_KEY);
    return THEME_CHOICES.includes(v) ? v : 'system';
  } catch {
    return 'system';
  }
}

function systemTheme() {
  return typeof window !== 'undefined' && window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function useTheme() {
  const [preference, setPreferenceState] = useState(readPreference);
  const [system, setSystem] = useState(systemTheme);

  useEffect(() => {
    const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
    if (!mq) return undefined;
    const onChange = (e) => setSystem(e.matches ? 'dark' : 'light');
    mq.addEventListener('change', onChange);
    return () => mq.removeEventListener('change', onChange);
  }, []);

  const resolved = preference === 'system' ? system : preference;

  useEffect(() => {
    document.documentElement.dataset.theme = resolved;
    document.documentElement.style.colorScheme = resolved;
  }, [resolved]);

  const setPreference = useCallback((p) => {
    if (!THEME_CHOICES.includes(p)) return;
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
