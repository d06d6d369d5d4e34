// Steps that run in order on one page, for the e2e files that walk one
// session. After a failure the rest still run as long as the page is
// connected (so one failed check does not hide the others); otherwise they
// are skipped instead of timing out one by one. A failing step leaves a
// screenshot in `artifacts`.
import path from 'node:path';
import { it } from 'node:test';

/**
 * @param {{ page: () => any, status: () => any, artifacts: string, prefix: string }} options
 *   `page` and `status` are read when a step runs (the page is made in `before`).
 * @returns {{ step: (name: string, fn: () => Promise<void>) => void, run: { failed: boolean } }}
 */
export function orderedSteps({ page, status, artifacts, prefix }) {
  const run = { failed: false };
  const step = (name, fn) =>
    it(name, async (t) => {
      if (run.failed && (!page() || (await status().getAttribute('data-state').catch(() => null)) !== 'connected')) {
        t.skip('an earlier step failed and the page is not connected');
        return;
      }
      try {
        await fn();
      } catch (err) {
        run.failed = true;
        await page()
          ?.screenshot({ path: path.join(artifacts, `${prefix}${name.replace(/\W+/g, '-')}.png`) })
          .catch(() => {});
        throw err;
      }
    });
  return { step, run };
}
