// End-to-end: the built dashboard in real headless Chromium against a real
// dashd started here on a free loopback port with a temporary SQLite store.
//
// One scenario, in order: log in; tiles and charts update; the session
// survives a reload; a longer window is filled from `history`; a paused chart
// still shows tooltips; dashd is stopped for 20 s (the whole page says
// disconnected since when) and restarted on the same port and state (the page
// is connected within 3 s of dashd answering, resumes with no stream seq
// missing, and the charts show a break and a shaded outage); the update rate
// changes the stream on the wire; a broadcast notification is acknowledged
// (its toast goes); screenshots at 1440×900 (light, dark) and 390×844 (alerts
// first, administration in its own view); and the frame budget with 1 h
// windows on every chart, printed as FRAME_BUDGET lines.
//
// axe-core runs on every page state reached (login page and dashboard, both
// themes, disconnected, phone, controls and admin views): 0 serious or
// critical WCAG 2.2 A/AA violations, each run printed as an AXE line.
//
// Run with `npm run e2e` (builds dist/ first). Needs dashd in ../.venv/bin
// (`make install`) or $DASHD_BIN_DIR, and Chromium at /usr/bin/chromium.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { launchChromium, recordFrames } from './lib/browser.mjs';
import { Dashd, FRONTEND_DIR, dashdBinDir, freePort, sleep, waitFor } from './lib/dashd.mjs';
import { fillSynthetic } from './lib/synthetic.mjs';
import { checkA11y as checkA11yOn } from './lib/a11y.mjs';
import { orderedSteps } from './lib/steps.mjs';

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
/** The whole suite must end by itself well within CI's budget. */
const SUITE_DEADLINE_MS = 8 * MINUTE_MS;
const UI_TIMEOUT_MS = 15 * SECOND_MS;
/** Back-off is capped at 30 s; the restart comes after a few short attempts. */
const RECONNECT_TIMEOUT_MS = 45 * SECOND_MS;
/** Issue 16: dashd stays down this long, and the page must be back this soon after it answers. */
const OUTAGE_MS = 20 * SECOND_MS;
const RECONNECT_AFTER_ANSWER_MS = 3 * SECOND_MS;
const FRAME_SAMPLE_MS = 15 * SECOND_MS;
/** Generous bound so a slow CI machine passes, but a per-frame re-layout or full re-parse would not. */
const FRAME_P95_LIMIT_MS = 100;
/** token_expiring comes 1 min - 50 s = 10 s after each token is issued. */
const TOKEN_WARNING_S = 50;
const DESKTOP = { width: 1440, height: 900 };
const PHONE = { width: 390, height: 844 };

const ARTIFACTS = path.join(FRONTEND_DIR, 'e2e', 'artifacts');
const DIST = path.join(FRONTEND_DIR, 'dist');

let stateDir;
let dashd;
let browser;
let page;
let frames;
const pageErrors = [];
/** connection_ack seq of the page's current session (set after the reload). */
let sessionAckSeq = null;

// A hung browser or daemon must not hang CI: kill everything and fail.
const watchdog = setTimeout(() => {
  console.error(`e2e: suite deadline of ${SUITE_DEADLINE_MS / 1000} s exceeded; aborting`);
  dashd?.killNow();
  process.exit(1);
}, SUITE_DEADLINE_MS);
watchdog.unref();
process.on('exit', () => dashd?.killNow());

const sent = (type) => frames.filter((f) => f.dir === 'sent' && f.msg.type === type);
const received = (type) => frames.filter((f) => f.dir === 'received' && f.msg.type === type);
const status = () => page.getByTestId('connection-status');
const evalDashd = (fn, arg) => page.evaluate(fn, arg);

const checkA11y = (label) => checkA11yOn(page, label);

async function expectState(state, timeoutMs = UI_TIMEOUT_MS) {
  await waitFor(async () => (await status().getAttribute('data-state')) === state, {
    timeoutMs,
    intervalMs: 100,
    message: `connection-status data-state=${state}`,
  });
}

/** Integers missing between the smallest and largest seq. */
function missingSeqs(seqs) {
  const set = new Set(seqs);
  const lo = Math.min(...seqs);
  const hi = Math.max(...seqs);
  const missing = [];
  for (let s = lo; s <= hi; s += 1) if (!set.has(s)) missing.push(s);
  return { lo, hi, missing };
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

async function measureFrames(label) {
  await evalDashd(() => {
    performance.clearMeasures('dashd:frame');
    window.__dashd.frames.reset();
    window.__dashd.frames.measure(true);
  });
  await sleep(FRAME_SAMPLE_MS);
  const result = await evalDashd(() => {
    window.__dashd.frames.measure(false);
    const durations = performance.getEntriesByName('dashd:frame').map((e) => e.duration);
    performance.clearMeasures('dashd:frame');
    return {
      durations,
      points: window.__dashd.pointCount(),
      charts: window.__dashd.charts().map((id) => window.__dashd.chart(id)),
      fullRedrawMs: window.__dashd.fullRedrawMs(10),
    };
  });
  const d = result.durations;
  assert.ok(d.length >= 5, `expected frames to be measured, got ${d.length}`);
  const stats = {
    p50: percentile(d, 50),
    p95: percentile(d, 95),
    max: Math.max(...d),
    frames: d.length,
    fullRedrawMs: result.fullRedrawMs,
  };
  const windowsOk = result.charts.every((c) => c && Math.round((c.xMax - c.xMin) / MINUTE_MS) === 60);
  console.log(
    `FRAME_BUDGET ms_per_frame_p50=${stats.p50.toFixed(2)} p95=${stats.p95.toFixed(2)} max=${stats.max.toFixed(2)} ` +
      `frames=${stats.frames} points=${result.points} charts=${result.charts.length} window=1h data=${label}`,
  );
  console.log(`FRAME_BUDGET_FULL_REDRAW ms_all_charts=${result.fullRedrawMs.toFixed(2)} data=${label}`);
  assert.ok(windowsOk, 'every chart shows a 1 h window');
  return stats;
}

describe('dashboard against a real dashd in headless Chromium', { concurrency: false }, () => {
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), 'dist/ is built (npm run build)');
    const binDir = dashdBinDir();
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashd-e2e-'));
    // Short-lived access tokens, so the suite also renews them on the open
    // socket (token_expiring -> /api/refresh -> auth) several times.
    dashd = new Dashd({
      binDir,
      port: await freePort(),
      stateDir,
      staticDir: DIST,
      extraArgs: ['--access-token-ttl', '1m', '--token-warning', `${TOKEN_WARNING_S}s`],
    });
    await dashd.start();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    frames = recordFrames(page);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of fs.readdirSync(ARTIFACTS)) if (f.startsWith('failure-')) fs.rmSync(path.join(ARTIFACTS, f));
  });

  after(async () => {
    if (run.failed && dashd) console.error(`--- dashd log (last lines) ---\n${dashd.logTail(60)}`);
    await browser?.close().catch(() => {});
    await dashd?.stop();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
    clearTimeout(watchdog);
  });

  const { step, run } = orderedSteps({ page: () => page, status, artifacts: ARTIFACTS, prefix: 'failure-' });

  step('logs in with username and password', async () => {
    const password = await dashd.adminPassword();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(dashd.baseUrl);
    await page.getByLabel('Username').waitFor();
    await checkA11y('login-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await checkA11y('login-light');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectState('connected');
    const [auth] = sent('auth');
    assert.ok(auth, 'the first frame is auth');
    assert.equal(frames.find((f) => f.dir === 'sent').msg.type, 'auth');
    assert.equal(typeof auth.msg.data.token, 'string');
    const ack = received('connection_ack')[0].msg.data;
    assert.equal(ack.role, 'admin');
    await waitFor(async () => /\d+ ms/.test(await status().innerText()), { message: 'latency shown' });
  });

  step('shows tiles and charts that update live', async () => {
    for (const name of ['cpu_usage', 'memory_usage', 'network_rx', 'network_tx', 'active_connections']) {
      await page.getByTestId(`tile-${name}`).waitFor();
    }
    for (const id of ['cpu', 'memory', 'network', 'disk', 'connections']) {
      await page.getByTestId(`chart-${id}`).waitFor();
    }
    const before = await evalDashd(() => ({ seqs: window.__dashd.seqs().length, cpu: window.__dashd.chart('cpu') }));
    const tileVersion = await page.locator('section.tiles').getAttribute('data-version');
    await waitFor(async () => (await evalDashd(() => window.__dashd.seqs().length)) >= before.seqs + 4, {
      message: 'four more samples in the chart data',
    });
    const afterCpu = await evalDashd(() => window.__dashd.chart('cpu'));
    assert.ok(afterCpu.datasets[0].points > before.cpu.datasets[0].points, 'the CPU chart gained points');
    assert.ok(afterCpu.datasets.length >= 2, 'CPU chart has the total and per-core lines');
    assert.notEqual(await page.locator('section.tiles').getAttribute('data-version'), tileVersion, 'tiles re-rendered');
    assert.equal(await page.getByRole('heading', { level: 1 }).count(), 1, 'one level-one heading');
    await checkA11y('dashboard-light');
    const cpuValue = await page.getByTestId('tile-cpu_usage').getAttribute('data-value');
    assert.ok(cpuValue !== '' && Number.isFinite(Number(cpuValue)), `CPU tile shows a number (${cpuValue})`);
    assert.match(await page.getByTestId('tile-cpu_usage').innerText(), /%/);
    assert.match(await page.getByTestId('tile-network_rx').innerText(), /B\/s/);
  });

  step('keeps the session across a page reload (refresh cookie)', async () => {
    const mark = frames.length;
    await page.reload();
    await expectState('connected');
    const ack = frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'connection_ack');
    sessionAckSeq = ack.msg.data.seq;
    assert.equal(await page.getByLabel('Password').count(), 0, 'no login form after reload');
  });

  step('fills a longer window from history, visible on the wire', async () => {
    const mark = frames.length;
    await page.getByRole('radio', { name: '15 min' }).check();
    // The CPU chart's request (the host panels fill their own charts with
    // history requests too, in any order).
    const req = await waitFor(
      () => frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'history' && f.msg.data.metrics?.includes('cpu_usage')),
      { message: 'a history request for the CPU chart' },
    );
    assert.equal(req.msg.data.from, '-15m');
    await waitFor(
      () => frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'history' && f.msg.correlation_id === req.msg.correlation_id),
      { message: 'the history reply' },
    );
    const cpu = await evalDashd(() => window.__dashd.chart('cpu'));
    assert.equal(Math.round((cpu.xMax - cpu.xMin) / MINUTE_MS), 15);
    assert.match(await page.getByTestId('chart-cpu').innerText(), /last 15 min/);
  });

  step('a paused chart keeps its tooltips after new samples arrive', async () => {
    await page.getByTestId('pause-button').click();
    const seqs = await evalDashd(() => window.__dashd.seqs().length);
    await waitFor(async () => (await evalDashd(() => window.__dashd.seqs().length)) >= seqs + 2, {
      message: 'samples arriving while paused',
    });
    const box = await page.getByTestId('chart-cpu').locator('canvas').boundingBox();
    for (const fx of [0.9, 0.7, 0.95]) {
      await page.mouse.move(box.x + box.width * fx, box.y + box.height / 2);
      await sleep(150);
      assert.ok((await evalDashd(() => window.__dashd.tooltip('cpu'))) > 0, `a tooltip at ${fx} of the paused chart`);
    }
    await checkA11y('paused');
    await page.getByTestId('pause-button').click();
    await page.mouse.move(0, 0);
  });

  step('renews an expiring token on the open connection', async () => {
    const expiring = await waitFor(() => received('token_expiring').at(-1), {
      timeoutMs: 30 * SECOND_MS,
      message: 'token_expiring',
    });
    const { socket } = expiring;
    const reauth = await waitFor(
      () => frames.find((f) => f.dir === 'sent' && f.socket === socket && f.msg.type === 'auth' && f.t >= expiring.t),
      { message: 'a fresh auth on the same socket' },
    );
    const answer = await waitFor(
      () => frames.find((f) => f.dir === 'received' && f.socket === socket && f.msg.correlation_id === reauth.msg.correlation_id),
      { message: 'the reply to the renewal' },
    );
    assert.equal(answer.msg.type, 'auth', `renewal accepted (${JSON.stringify(answer.msg)})`);
    assert.ok(Date.parse(answer.msg.data.expires_at) > Date.now(), 'the new token expires later');
    const firstAuth = frames.find((f) => f.dir === 'sent' && f.socket === socket && f.msg.type === 'auth');
    assert.notEqual(reauth.msg.data.token, firstAuth.msg.data.token, 'a new token');
    assert.equal(await status().getAttribute('data-state'), 'connected');
  });

  step('shows reconnecting while dashd is down and resumes with no missing seq', async () => {
    await waitFor(async () => (await evalDashd(() => window.__dashd.lastSeq())) >= sessionAckSeq + 4, {
      message: 'some live updates in this session',
    });
    const lastBefore = await evalDashd(() => window.__dashd.lastSeq());
    const stoppedAt = Date.now();
    await dashd.stop();
    await expectState('reconnecting');
    await waitFor(async () => /attempt \d+/.test(await status().innerText()), { message: 'the attempt number' });
    const banner = page.getByTestId('disconnected-banner');
    await banner.waitFor();
    assert.match(await banner.innerText(), /Disconnected from dashd\s+since\s+\d\d:\d\d:\d\d/);
    assert.ok(await page.locator('.app.is-disconnected').count(), 'the whole page is marked disconnected');
    await checkA11y('disconnected');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1440x900-disconnected.png') });
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt)));
    assert.equal(await status().getAttribute('data-state'), 'reconnecting');
    const mark = frames.length;
    await dashd.start();
    // dashd answers (/api/ready is 200 when start() returns): the page must be
    // connected within 3 s, not after its next back-off step.
    const answeredAt = Date.now();
    await expectState('connected', RECONNECT_AFTER_ANSWER_MS);
    console.log(`RECONNECT ms_after_dashd_answered=${Date.now() - answeredAt} outage_ms=${answeredAt - stoppedAt}`);
    await banner.waitFor({ state: 'detached' });

    const auth = frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'auth');
    assert.ok(auth, 'authenticated again after the restart');
    assert.ok(auth.msg.data.resume_after_seq >= lastBefore, `resumed after seq ${auth.msg.data.resume_after_seq} (>= ${lastBefore})`);
    const ack = frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'connection_ack');
    assert.ok(ack.msg.data.seq >= lastBefore, 'the daemon seq continued across the restart');
    await waitFor(() => frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'resume'), {
      message: 'the resume reply',
    });
    const restartSeq = ack.msg.data.seq;
    await waitFor(async () => (await evalDashd(() => window.__dashd.lastSeq())) >= restartSeq + 4, {
      message: 'live updates after the restart',
    });
    const gaps = frames.slice(mark).filter((f) => f.dir === 'received' && f.msg.type === 'resume_gap');
    // Every stream message issued after this session's connection_ack must be
    // in the chart data: before it, the page only got the latest sample.
    const applied = await evalDashd(() => window.__dashd.streamSeqs());
    const seqs = applied.filter((s) => s > sessionAckSeq);
    const { lo, hi, missing } = missingSeqs(seqs);
    const wire = frames
      .filter((f) => f.dir === 'received' && (Number.isFinite(f.msg.seq) || ['connection_ack', 'resume', 'resume_gap'].includes(f.msg.type)))
      .map((f) => (Number.isFinite(f.msg.seq) ? f.msg.seq : `${f.msg.type}@${f.msg.data.seq ?? f.msg.data.from_seq ?? ''}`));
    const detail = `session ack ${sessionAckSeq}, last before stop ${lastBefore}, ack after restart ${restartSeq}; ` +
      `resume_gap: ${JSON.stringify(gaps.map((g) => g.msg.data))}; applied: ${applied.join(',')}; on the wire: ${wire.join(',')}`;
    assert.ok(lo === sessionAckSeq + 1 && hi > restartSeq, `seq range ${lo}..${hi} spans the restart (${detail})`);
    assert.deepEqual(missing, [], `no missing seq in the chart data (${detail})`);
    const sampleSeqs = await evalDashd(() => window.__dashd.seqs());
    assert.ok(sampleSeqs.includes(lastBefore + 1) || seqs.includes(lastBefore + 1), 'the first seq after the stop is present');

    // The outage is visible: a break in the line inside it, and a shaded span.
    const cpu = await waitFor(
      async () => {
        const c = await evalDashd(() => window.__dashd.chart('cpu'));
        return c.breaks[0].some((x) => x > stoppedAt - 5 * SECOND_MS && x < answeredAt) && c.outages.length ? c : null;
      },
      { message: 'a break and a shaded outage on the CPU chart' },
    );
    const span = cpu.outages.at(-1);
    assert.ok(span.to - span.from >= OUTAGE_MS - 5 * SECOND_MS, `outage shaded for ${(span.to - span.from) / 1000} s`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1440x900-after-outage.png') });
  });

  step('shows offline on the browser offline event and resumes with no missing seq', async () => {
    const context = page.context();
    const lastBefore = await evalDashd(() => window.__dashd.lastSeq());
    await context.setOffline(true);
    await expectState('offline');
    // Long enough for the daemon to issue several updates the page must get back.
    await sleep(3 * SECOND_MS);
    const mark = frames.length;
    await context.setOffline(false);
    await expectState('connected');
    const auth = frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'auth');
    assert.ok(auth.msg.data.resume_after_seq >= lastBefore, 'resumed after the last seq seen');
    const ack = frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'connection_ack');
    await waitFor(() => frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'resume'), { message: 'the resume reply' });
    await waitFor(async () => (await evalDashd(() => window.__dashd.lastSeq())) >= ack.msg.data.seq + 2, { message: 'live updates again' });
    const resume = frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'resume').msg.data;
    const applied = await evalDashd(() => window.__dashd.streamSeqs());
    const { missing } = missingSeqs(applied.filter((x) => x > sessionAckSeq));
    assert.deepEqual(
      missing,
      [],
      `no missing seq after going offline at ${lastBefore} and back at ${ack.msg.data.seq} (resume reply ${JSON.stringify(resume)})`,
    );
  });

  step('changing the update rate sends set_rate and slows the stream', async () => {
    const mark = frames.length;
    await page.getByLabel('Update rate').selectOption('0.5');
    const req = await waitFor(() => frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'set_rate'), {
      message: 'set_rate on the wire',
    });
    assert.deepEqual(req.msg.data, { max_hz: 0.5 });
    const reply = await waitFor(
      () => frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'set_rate' && f.msg.correlation_id === req.msg.correlation_id),
      { message: 'the set_rate reply' },
    );
    assert.equal(reply.msg.data.effective_hz, 0.5);
    await page.getByTestId('effective-rate').filter({ hasText: '0.5 Hz' }).waitFor();
    await sleep(1.5 * SECOND_MS);
    const start = frames.length;
    const spanMs = 6 * SECOND_MS;
    await sleep(spanMs);
    const updates = frames.slice(start).filter((f) => f.dir === 'received' && f.msg.type === 'metrics_update').length;
    // 2 Hz live would be ~12; throttled to 0.5 Hz it is ~3.
    assert.ok(updates >= 1 && updates <= 5, `${updates} metrics_update in ${spanMs / 1000} s at 0.5 Hz`);
    const throttled = frames.slice(start).find((f) => f.dir === 'received' && f.msg.type === 'metrics_update');
    assert.ok(throttled.msg.data.window, 'throttled updates carry a window summary');

    await page.getByLabel('Update rate').selectOption('live');
    await waitFor(() => frames.slice(start).find((f) => f.dir === 'sent' && f.msg.type === 'set_rate'), { message: 'rate back to live' });
  });

  step('acknowledges a broadcast notification', async () => {
    const admin = page.getByRole('form', { name: 'Broadcast a notification' });
    await admin.getByLabel('Level').selectOption('critical');
    await admin.getByLabel('Title').fill('e2e');
    await admin.getByLabel('Message').fill('hello');
    const mark = frames.length;
    await admin.getByRole('button', { name: 'Send' }).click();
    const bc = await waitFor(() => frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'broadcast'), { message: 'broadcast sent' });
    assert.deepEqual(bc.msg.data, { level: 'critical', title: 'e2e', message: 'hello' });

    await page.getByTestId('toast').filter({ hasText: 'e2e' }).waitFor();
    const item = page.getByTestId('notification-item').filter({ hasText: 'hello' });
    await item.waitFor();
    assert.equal(await item.getAttribute('data-level'), 'critical');
    assert.equal(await item.getAttribute('data-acknowledged'), 'false');
    assert.ok(Number(await page.getByTestId('notifications-unread').innerText()) >= 1, 'unread count');
    const id = await item.getAttribute('data-id');

    await checkA11y('notification-and-toast');
    await item.getByRole('button', { name: 'Acknowledge e2e' }).click();
    const ackReq = await waitFor(() => frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'ack'), { message: 'ack sent' });
    assert.deepEqual(ackReq.msg.data, { notification_id: id });
    await waitFor(async () => (await item.getAttribute('data-acknowledged')) === 'true', { message: 'acknowledged in the list' });
    assert.match(await item.innerText(), /acknowledged by admin/);
    await waitFor(() => frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'notification_ack' && f.msg.data.id === id), {
      message: 'notification_ack on the stream',
    });
    // The toast follows the acknowledgement.
    await page.getByTestId('toast').filter({ hasText: 'e2e' }).waitFor({ state: 'detached' });
  });

  step('a firing rule shows in active alerts, is acknowledged from its toast, and deleting it asks first', async () => {
    const form = page.getByRole('form', { name: 'Add or replace a rule' });
    await form.getByLabel('Name').fill('e2e_always');
    await form.getByLabel('Metric').selectOption('cpu_usage');
    await form.getByLabel('Op').selectOption('>=');
    await form.getByLabel('Threshold').fill('0');
    await form.getByLabel('For (s)').fill('0');
    await form.getByLabel('Level').selectOption('critical');
    await form.getByRole('button', { name: 'Save rule' }).click();
    const alert = page.locator('[data-testid="active-alert"][data-rule="e2e_always"]');
    await alert.first().waitFor();
    assert.match(await alert.first().innerText(), /firing since \d\d:\d\d:\d\d/);
    const toast = page.getByTestId('toast').filter({ hasText: 'cpu_usage >= 0' });
    await toast.first().waitFor();
    await checkA11y('active-alert-and-toast');
    await toast.first().getByRole('button', { name: 'Acknowledge' }).click();
    await toast.first().waitFor({ state: 'detached' });
    await waitFor(async () => (await alert.first().getAttribute('data-acknowledged')) === 'true', { message: 'the alert updated in place' });
    assert.match(await alert.first().innerText(), /acknowledged by admin/);

    // An unread info notification, to see the unread count survive a reload.
    const bc = page.getByRole('form', { name: 'Broadcast a notification' });
    await bc.getByLabel('Level').selectOption('info');
    await bc.getByLabel('Title').fill('e2e unread');
    await bc.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('notification-item').filter({ hasText: 'e2e unread' }).waitFor();
    const unreadOf = async () => Number(/(\d+) unread/.exec(await page.getByRole('link', { name: /Notifications, \d+ unread/ }).getAttribute('aria-label'))[1]);
    const unreadBefore = await unreadOf();
    assert.ok(unreadBefore >= 1, `unread before the reload: ${unreadBefore}`);

    // The rules table shows state and clear threshold (after a reload of the list).
    await page.reload();
    await expectState('connected');
    const row = page.locator('[data-testid="rule-row"][data-rule="e2e_always"]');
    await row.waitFor();
    await waitFor(async () => /firing on/.test(await row.getByTestId('rule-state').innerText()), { message: 'rule state firing' });
    assert.equal(await row.getByTestId('rule-clear').innerText(), '< 0');
    // Unread survives the reload (the server's per-user state), not reset to 0.
    await waitFor(async () => (await unreadOf()) === unreadBefore, { message: `unread ${unreadBefore} after the reload` });
    const item = page.getByTestId('notification-item').filter({ hasText: 'e2e unread' });
    assert.equal(await item.getAttribute('data-read'), 'false', 'still unread after the reload');
    const mark = frames.length;
    await row.getByRole('button', { name: 'Delete rule e2e_always' }).click();
    await checkA11y('rule-delete-confirmation');
    assert.equal(frames.slice(mark).filter((f) => f.dir === 'sent' && f.msg.type === 'rule_delete').length, 0, 'nothing deleted before confirming');
    await row.getByRole('button', { name: 'Yes, delete e2e_always' }).click();
    await waitFor(() => frames.slice(mark).find((f) => f.dir === 'sent' && f.msg.type === 'rule_delete'), { message: 'rule_delete after confirming' });
    await row.waitFor({ state: 'detached' });
    // Its alert is over too: no active-alerts view keeps showing it.
    await alert.waitFor({ state: 'detached' });
  });

  step('is responsive: screenshots at 1440×900 and 390×844', async () => {
    await page.setViewportSize(DESKTOP);
    await page.evaluate(() => window.scrollTo(0, 0));
    await sleep(600);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1440x900.png') });

    await page.getByLabel('Theme').selectOption('dark');
    await sleep(600);
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-1440x900-dark.png') });
    await checkA11y('dashboard-dark');
    // The focus ring shows on the selected time-window button in the dark theme.
    await page.getByRole('radio', { name: '15 min' }).focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowLeft');
    const ring = await page.evaluate(() => {
      const span = document.activeElement.nextElementSibling;
      const st = getComputedStyle(span);
      return { style: st.outlineStyle, width: parseFloat(st.outlineWidth), checked: document.activeElement.checked };
    });
    assert.deepEqual(ring, { style: 'solid', width: 3, checked: true }, 'a visible focus ring on the selected window');
    await page.getByLabel('Theme').selectOption('system');

    await page.setViewportSize(PHONE);
    await sleep(800);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scrolling at 390 px (overflow ${overflow} px)`);
    const menu = page.getByRole('button', { name: /Controls/ });
    assert.ok(await menu.isVisible(), 'controls collapse into a menu');
    assert.equal(await page.getByLabel('Update rate').isVisible(), false);
    // Alerts and notifications first; administration behind its own view.
    const alertsTop = (await page.getByTestId('active-alerts').boundingBox()).y;
    const tilesTop = (await page.locator('section.tiles').boundingBox()).y;
    assert.ok(alertsTop < tilesTop, `alerts (${alertsTop}) above the tiles (${tilesTop}) on a phone`);
    assert.equal(await page.getByRole('heading', { name: 'Administration' }).isVisible(), false, 'admin is not on the phone dashboard');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-390x844.png') });
    await checkA11y('phone');
    const adminButton = page.getByRole('button', { name: 'Administration' });
    await adminButton.click();
    await page.getByRole('heading', { name: 'Administration' }).waitFor();
    assert.equal(await page.getByTestId('chart-cpu').isVisible(), false, 'the admin view replaces the dashboard');
    const adminOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(adminOverflow <= 0, `no horizontal scrolling in the admin view (overflow ${adminOverflow} px)`);
    for (const del of await page.getByRole('button', { name: /^Delete rule/ }).all()) {
      const b = await del.boundingBox();
      assert.ok(b.x >= 0 && b.x + b.width <= PHONE.width, 'rule Delete buttons are not clipped');
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-390x844-admin.png') });
    await checkA11y('phone-admin');
    await page.getByRole('button', { name: 'Dashboard' }).click();
    await menu.click();
    assert.equal(await menu.getAttribute('aria-expanded'), 'true');
    assert.ok(await page.getByLabel('Update rate').isVisible(), 'menu opens the controls');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-390x844-controls.png') });
    await checkA11y('phone-controls');
    await menu.click();
    const chartBox = await page.getByTestId('chart-cpu').boundingBox();
    assert.ok(chartBox.width <= PHONE.width && chartBox.width > 300, `chart resized to ${chartBox.width} px`);
    await page.setViewportSize(DESKTOP);
  });

  step('frame budget with 1 h windows on all charts', async () => {
    const mark = frames.length;
    await page.getByRole('radio', { name: '1 h' }).check();
    await waitFor(() => frames.slice(mark).find((f) => f.dir === 'received' && f.msg.type === 'history'), { message: 'history for 1 h' });
    const real = await measureFrames('live');
    // A brand-new daemon has only minutes of data; fill every series to a full
    // hour at the collection rate to measure the worst case.
    await evalDashd(fillSynthetic, { spanMs: 60 * 60 * 1000 });
    const full = await measureFrames('full-1h-synthetic');
    assert.ok(full.p95 < FRAME_P95_LIMIT_MS, `p95 ${full.p95.toFixed(1)} ms per frame is under ${FRAME_P95_LIMIT_MS} ms`);
    assert.ok(full.fullRedrawMs < FRAME_P95_LIMIT_MS, `redrawing every chart takes ${full.fullRedrawMs.toFixed(1)} ms`);
    assert.ok(real.p95 < FRAME_P95_LIMIT_MS);
  });

  step('raised no uncaught page errors', async () => {
    assert.deepEqual(pageErrors, []);
  });
});
