// axe-core in the page, for every e2e file: no serious or critical WCAG 2.2
// A/AA violation in the page as it is now. Injected per call (a reload drops it).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const AXE_SOURCE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/** Runs axe on `page`, logs `AXE state=<label> …` and fails on a serious or critical violation. */
export async function checkA11y(page, label) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async (tags) => {
    const r = await window.axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1, 2).join(' ')}`),
    }));
  }, AXE_TAGS);
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  console.log(`AXE state=${label} violations=${result.length} serious_or_critical=${bad.length}`);
  assert.deepEqual(bad, [], `axe-core on ${label}: ${JSON.stringify(bad, null, 1)}`);
}
