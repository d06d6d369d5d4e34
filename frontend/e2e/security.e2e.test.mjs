// Issue 11, items 5 and 8 in a real browser: the built dashboard runs under
// dashd's Content-Security-Policy (connect-src 'self', style-src 'self'
// without 'unsafe-inline', base-uri 'none', form-action 'self') with no
// violation reported, and refresh-token rotation keeps the session across
// reloads (each reload refreshes; the browser keeps the rotated cookie).
//
// Run with `npm run e2e` (builds dist/ first); needs dashd in ../.venv/bin
// (`make install`) and Chromium at /usr/bin/chromium.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium } from './lib/browser.mjs';
import { Dashd, FRONTEND_DIR, dashdBinDir, freePort, waitFor } from './lib/dashd.mjs';

const SECOND_MS = 1000;
const UI_TIMEOUT_MS = 15 * SECOND_MS;
const DIST = path.join(FRONTEND_DIR, 'dist');

let stateDir;
let dashd;
let browser;
let page;
const violations = [];
const cspConsole = [];

describe('the dashboard under dashd security headers, in headless Chromium', { concurrency: false }, () => {
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), 'dist/ is built (npm run build)');
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashd-e2e-sec-'));
    dashd = new Dashd({ binDir: dashdBinDir(), port: await freePort(), stateDir, staticDir: DIST });
    await dashd.start();
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    // Every CSP violation the page sees, before any of its scripts run.
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    page.on('console', (msg) => {
      if (/Content Security Policy/i.test(msg.text())) cspConsole.push(msg.text());
    });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await dashd?.stop();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  });

  const collectViolations = async () => {
    violations.push(...(await page.evaluate(() => window.__cspViolations.splice(0))));
  };

  it('is served with the strict policy', async () => {
    const response = await page.goto(dashd.baseUrl);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /connect-src 'self';/);
    assert.match(csp, /style-src 'self';/);
    assert.match(csp, /base-uri 'none'/);
    assert.match(csp, /form-action 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|ws:|wss:/);
    assert.equal(response.headers().server, 'dashd');
  });

  it('logs in, streams and renders charts with no CSP violation', async () => {
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(await dashd.adminPassword());
    await page.getByRole('button', { name: 'Sign in' }).click();
    const status = page.getByTestId('connection-status');
    await waitFor(async () => (await status.getAttribute('data-state')) === 'connected', {
      timeoutMs: UI_TIMEOUT_MS,
      message: 'connected',
    });
    for (const id of ['cpu', 'memory', 'network', 'disk', 'connections']) await page.getByTestId(`chart-${id}`).waitFor();
    await page.getByTestId('tile-cpu_usage').waitFor();
    await collectViolations();
    assert.deepEqual(violations, [], 'no securitypolicyviolation events');
    assert.deepEqual(cspConsole, [], 'no CSP messages in the console');
  });

  it('keeps the session across reloads while the refresh cookie rotates', async () => {
    const cookieValue = async () =>
      (await page.context().cookies()).find((c) => c.name === 'dashd_refresh')?.value;
    const seen = new Set([await cookieValue()]);
    for (let i = 0; i < 3; i += 1) {
      await page.reload();
      const status = page.getByTestId('connection-status');
      await waitFor(async () => (await status.getAttribute('data-state')) === 'connected', {
        timeoutMs: UI_TIMEOUT_MS,
        message: `connected after reload ${i + 1}`,
      });
      seen.add(await cookieValue());
    }
    assert.equal(seen.size, 4, 'every reload refreshed with the latest cookie and got a new one');
    await collectViolations();
    assert.deepEqual(violations, []);
  });
});
