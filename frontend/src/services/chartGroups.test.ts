import { describe, expect, it } from 'vitest';
import { expandMetrics } from './chartGroups';
import { groupOfMetric, subscriptionFor } from './constants';

describe('metric names', () => {
  it('expands the per-core pattern in natural order', () => {
    const names = ['cpu_usage', 'cpu_core_10', 'cpu_core_2', 'cpu_core_0', 'memory_usage'];
    expect(expandMetrics(['cpu_usage', 'cpu_core_*'], names)).toEqual(['cpu_usage', 'cpu_core_0', 'cpu_core_2', 'cpu_core_10']);
  });

  it('maps selected groups to subscription globs and names back to groups', () => {
    expect(subscriptionFor(['memory', 'network'])).toEqual(['memory_usage', 'swap_usage', 'network_*']);
    expect(groupOfMetric('cpu_core_3')).toBe('cpu');
    expect(groupOfMetric('load_15')).toBe('cpu');
    expect(groupOfMetric('active_connections')).toBe('system');
    expect(groupOfMetric('nope')).toBeNull();
  });
});
