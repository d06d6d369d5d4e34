import { describe, expect, it } from 'vitest';
import { groupsOfPanels, panelsOfGroups } from './useViewState';

describe('panels in the address', () => {
  it('maps metric names to the groups whose charts show them, reporting unknown names', () => {
    expect(groupsOfPanels(['memory_usage', 'cpu_core_3', 'nope'])).toEqual({ groups: ['cpu', 'memory'], unknown: ['nope'] });
  });

  it('writes no panels when everything is shown, else one name per group that reads back', () => {
    expect(panelsOfGroups(['cpu', 'memory', 'network', 'disk', 'system'])).toBeNull();
    const panels = panelsOfGroups(['network', 'disk']);
    expect(panels).toEqual(['network_rx', 'disk_read']);
    expect(groupsOfPanels(panels ?? []).groups).toEqual(['network', 'disk']);
  });
});
