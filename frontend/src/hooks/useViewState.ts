// What the dashboard shows — time range, host, panels — kept in the address
// (docs/dashboard-urls.md), so a copied link restores the view and Back
// returns to the previous range. Choosing a range adds a history entry;
// host and panel changes replace the current one. The live range and the
// metric groups are also saved as preferences for the next visit.

import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { METRIC_GROUPS, TIME_WINDOWS, groupOfMetric } from '../services/constants';
import { readPreference, writePreference } from '../services/preferences';
import { DEFAULT_RANGE_ID, liveRange, readViewUrl, sameRange, writeViewUrl, type LiveRange, type ViewRange } from '../services/timeRange';

const WINDOW_KEY = 'dashd.window';
const GROUPS_KEY = 'dashd.groups';
const ALL_GROUPS = METRIC_GROUPS.map((g) => g.id);

/** The metric a group's chart is named by in `panels=` (its first, always present). */
export const PANEL_OF_GROUP: Readonly<Record<string, string>> = {
  cpu: 'cpu_usage',
  memory: 'memory_usage',
  network: 'network_rx',
  disk: 'disk_read',
  system: 'active_connections',
};

export interface ViewStateHandle {
  range: ViewRange;
  /** The live range "Back to live" returns to. */
  lastLive: LiveRange;
  host: string | null;
  groups: string[];
  /** Parts of the address that could not be used. */
  notices: string[];
  dismissNotices(): void;
  setRange(range: ViewRange): void;
  backToLive(): void;
  setHost(host: string | null): void;
  toggleGroup(id: string): void;
}

function savedLiveRange(): LiveRange {
  const id = readPreference(WINDOW_KEY, (v) => (TIME_WINDOWS.some((w) => w.id === v) ? v : undefined), DEFAULT_RANGE_ID);
  return liveRange(id) ?? (liveRange(DEFAULT_RANGE_ID) as LiveRange);
}

function savedGroups(): string[] {
  return readPreference(
    GROUPS_KEY,
    (v) => {
      const list: unknown = JSON.parse(v);
      return Array.isArray(list) ? ALL_GROUPS.filter((g) => list.includes(g)) : undefined;
    },
    ALL_GROUPS,
  );
}

/** `panels=` names → metric groups, with a notice for each name no group knows. */
export function groupsOfPanels(panels: readonly string[]): { groups: string[]; unknown: string[] } {
  const chosen = new Set<string>();
  const unknown: string[] = [];
  for (const name of panels) {
    const group = groupOfMetric(name);
    if (group) chosen.add(group);
    else unknown.push(name);
  }
  return { groups: ALL_GROUPS.filter((g) => chosen.has(g)), unknown };
}

/** Metric groups → `panels=` names (null when all are shown: the default). */
export function panelsOfGroups(groups: readonly string[]): string[] | null {
  if (groups.length === ALL_GROUPS.length) return null;
  return groups.map((g) => PANEL_OF_GROUP[g]).filter(Boolean);
}

interface Initial {
  range: ViewRange;
  lastLive: LiveRange;
  host: string | null;
  groups: string[];
  notices: string[];
}

function initialView(search: string): Initial {
  const parsed = readViewUrl(search);
  const saved = savedLiveRange();
  const notices = [...parsed.notices];
  let groups = savedGroups();
  if (parsed.panels) {
    const { groups: fromLink, unknown } = groupsOfPanels(parsed.panels);
    if (unknown.length) notices.push(`Unknown panels in the link were left out: ${unknown.join(', ')}.`);
    if (fromLink.length) groups = fromLink;
  }
  const range = parsed.range ?? saved;
  return { range, lastLive: range.kind === 'live' ? range : saved, host: parsed.host, groups, notices };
}

export function useViewState(): ViewStateHandle {
  const [view, setView] = useState<Initial>(() => initialView(window.location.search));

  // The address follows the view; a range change is a new history entry.
  const { range, host, groups } = view;
  const panelsKey = groups.join(',');
  // The range of the current history entry: a ref, since writing the address
  // must not render the dashboard a second time.
  const pushed = useRef<ViewRange>(range);
  useEffect(() => {
    const search = writeViewUrl({ range, host, panels: panelsOfGroups(panelsKey ? panelsKey.split(',') : []) }, window.location.search);
    if (search === window.location.search) return;
    const url = `${window.location.pathname}${search}${window.location.hash}`;
    if (!sameRange(pushed.current, range)) {
      window.history.pushState(null, '', url);
      pushed.current = range;
    } else {
      window.history.replaceState(null, '', url);
    }
  }, [range, host, panelsKey]);

  // Back / Forward: the address is the truth again.
  useEffect(() => {
    const onPop = () => {
      const next = initialView(window.location.search);
      setView((v) => ({ ...next, lastLive: next.range.kind === 'live' ? next.range : v.lastLive, notices: next.notices }));
      pushed.current = next.range;
    };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  const setRange = useCallback((next: ViewRange) => {
    if (next.kind === 'live') writePreference(WINDOW_KEY, next.id);
    setView((v) => ({ ...v, range: next, lastLive: next.kind === 'live' ? next : v.lastLive }));
  }, []);
  const backToLive = useCallback(() => setView((v) => ({ ...v, range: v.lastLive })), []);
  const setHost = useCallback((next: string | null) => setView((v) => ({ ...v, host: next })), []);
  const toggleGroup = useCallback((id: string) => {
    setView((v) => {
      const next = v.groups.includes(id) ? v.groups.filter((g) => g !== id) : ALL_GROUPS.filter((g) => g === id || v.groups.includes(g));
      writePreference(GROUPS_KEY, JSON.stringify(next));
      return { ...v, groups: next };
    });
  }, []);
  const dismissNotices = useCallback(() => setView((v) => ({ ...v, notices: [] })), []);

  return useMemo(
    () => ({ range, lastLive: view.lastLive, host, groups, notices: view.notices, dismissNotices, setRange, backToLive, setHost, toggleGroup }),
    [range, view.lastLive, host, groups, view.notices, dismissNotices, setRange, backToLive, setHost, toggleGroup],
  );
}
