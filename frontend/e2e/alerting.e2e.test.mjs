// End-to-end, issue 14's "done when": in real headless Chromium against a
// real dashd, an admin adds an e-mail channel and a Slack-format webhook in
// the dashboard, presses "Send test" on each and sees the receiver's answer,
// both messages arrive (a real SMTP server — aiosmtpd — and a real HTTP
// receiver), and an operator-level silence is created and listed.
//
// Run with `npm run e2e`. Needs dashd and aiosmtpd in ../.venv (`make install
// test-deps`) and Chromium at /usr/bin/chromium.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { launchChromium } from './lib/browser.mjs';
import { Dashd, FRONTEND_DIR, dashdBinDir, freePort, waitFor } from './lib/dashd.mjs';

const UI_TIMEOUT_MS = 15_000;
const DIST = path.join(FRONTEND_DIR, 'dist');

let stateDir;
let dashd;
let browser;
let page;
let hook;
let smtp;
const hookRequests = [];
const mails = [];
const pageErrors = [];

function startHook() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        hookRequests.push({ path: req.url, headers: req.headers, body });
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
      });
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function startSmtp(binDir, port) {
  const proc = spawn(path.join(binDir, 'python'), [path.join(FRONTEND_DIR, 'e2e', 'lib', 'smtp_sink.py'), String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let ready = false;
  let buffer = '';
  proc.stdout.on('data', (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line === 'READY') ready = true;
      else if (line) mails.push(JSON.parse(line));
    }
  });
  await waitFor(() => ready, { timeoutMs: 20_000, message: 'the SMTP sink' });
  return proc;
}

describe('alert delivery from the dashboard', { concurrency: false }, () => {
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), 'dist/ is built (npm run build)');
    const binDir = dashdBinDir();
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashd-e2e-alerting-'));
    hook = await startHook();
    const smtpPort = await freePort();
    smtp = await startSmtp(binDir, smtpPort);
    smtp.port = smtpPort;
    dashd = new Dashd({
      binDir, port: await freePort(), stateDir, staticDir: DIST,
      extraArgs: ['--alert-allow-networks', '127.0.0.0/8', '--host-name', 'e2e-host'],
    });
    await dashd.start();
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    page.on('pageerror', (err) => pageErrors.push(err.message));
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await dashd?.stop();
    smtp?.kill();
    hook?.close();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('adds an e-mail and a Slack webhook, sends a test to each, and creates a silence', async () => {
    const password = await dashd.adminPassword();
    await page.goto(dashd.baseUrl);
    await page.getByLabel('Username', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    const form = page.getByRole('form', { name: 'Add or change a channel' });
    await form.getByLabel('Name', { exact: true }).fill('team-slack');
    await form.getByLabel('URL', { exact: true }).fill(`http://127.0.0.1:${hook.address().port}/services/T0/B0/x`);
    await form.getByLabel(/^Format/).selectOption('slack');
    await form.getByLabel('Header 1 name', { exact: true }).fill('Authorization');
    await form.getByLabel('Header 1 value', { exact: true }).fill('Bearer e2e-secret');
    await form.getByRole('button', { name: 'Save channel' }).click();
    await page.getByRole('button', { name: 'Send a test to team-slack' }).waitFor();

    await form.getByLabel('Name', { exact: true }).fill('oncall-mail');
    await form.getByLabel(/^Kind/).selectOption('email');
    await form.getByLabel('SMTP host', { exact: true }).fill('127.0.0.1');
    await form.getByLabel('Port', { exact: true }).fill(String(smtp.port));
    await form.getByLabel(/^Security/).selectOption('none');
    await form.getByLabel('From', { exact: true }).fill('dashd@example.com');
    await form.getByLabel('To (comma-separated)', { exact: true }).fill('oncall@example.com');
    await form.getByRole('button', { name: 'Save channel' }).click();
    await page.getByRole('button', { name: 'Send a test to oncall-mail' }).waitFor();

    // With no [route:...] in the INI file, every alert goes to both channels.
    await page.getByText('Routing (every alert to every channel)').waitFor();
    const channels = await page.locator('.alerting-channels .table-wrap table').innerText();
    assert.ok(channels.includes('Authorization: set'), channels);
    assert.ok(!(await page.content()).includes('e2e-secret'), 'the secret never reaches the page');

    await page.getByRole('button', { name: 'Send a test to team-slack' }).click();
    await page.getByText('✓ HTTP 200: ok').waitFor();
    await page.getByRole('button', { name: 'Send a test to oncall-mail' }).click();
    await page.getByText('✓ SMTP accepted 1 of 1 recipients', { exact: false }).waitFor();

    await waitFor(() => hookRequests.length === 1 && mails.length === 1, { message: 'both test messages' });
    const slack = JSON.parse(hookRequests[0].body);
    assert.equal(hookRequests[0].headers.authorization, 'Bearer e2e-secret');
    assert.ok(slack.text.startsWith('[TEST] [FIRING:1]'), slack.text);
    assert.equal(slack.blocks[0].type, 'header');
    assert.deepEqual(mails[0].to, ['oncall@example.com']);
    assert.ok(mails[0].subject.startsWith('dashd [TEST] [FIRING:1]'), mails[0].subject);
    assert.deepEqual(mails[0].parts, ['text/plain', 'text/html']);

    const silence = page.getByRole('form', { name: 'Create a silence' });
    await silence.getByLabel('Matcher 1 value', { exact: true }).fill('e2e-host');
    await silence.getByLabel('Comment', { exact: true }).fill('e2e maintenance window');
    await silence.getByRole('button', { name: 'Silence' }).click();
    await page.locator('.alerting-silences li', { hasText: 'e2e maintenance window' }).waitFor();
    const listed = await page.locator('.alerting-silences li').first().innerText();
    assert.ok(listed.startsWith('active') && listed.includes('host=e2e-host') && listed.includes('by admin'), listed);
    assert.deepEqual(pageErrors, []);
  });
});
