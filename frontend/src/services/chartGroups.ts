// Chart configuration: which metrics each live chart draws.

export interface ChartGroup {
  id: string;
  title: string;
  unit: string;
  metrics: string[];
  yMax?: number;
}

/**
 * Chart groups: what each live chart draws. `metrics` are exact names or the
 * `cpu_core_*` pattern expanded from the catalogue sent in connection_ack.
 */
export const CHART_GROUPS: readonly ChartGroup[] = [
  { id: 'cpu', title: 'CPU', unit: '%', metrics: ['cpu_usage', 'cpu_core_*'], yMax: 100 },
  { id: 'memory', title: 'Memory & swap', unit: '%', metrics: ['memory_usage', 'swap_usage'], yMax: 100 },
  { id: 'network', title: 'Network', unit: 'B/s', metrics: ['network_rx', 'network_tx'] },
  { id: 'disk', title: 'Disk I/O', unit: 'B/s', metrics: ['disk_read', 'disk_write'] },
  { id: 'connections', title: 'Connections', unit: 'count', metrics: ['active_connections'] },
];

/** Expand chart-group patterns (`cpu_core_*`) against the catalogue names. */
export function expandMetrics(patterns: readonly string[], catalogueNames: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    if (p.endsWith('*')) {
      const prefix = p.slice(0, -1);
      const matches = catalogueNames.filter((n) => n.startsWith(prefix));
      matches.sort(naturalCompare);
      out.push(...matches);
    } else {
      out.push(p);
    }
  }
  return [...new Set(out)];
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
