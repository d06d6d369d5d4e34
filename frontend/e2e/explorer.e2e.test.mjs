// The time explorer (issue 15) against a real dashd in headless Chromium.
//
// Before dashd starts, lib/prefill_store.py writes EXPLORER_DAYS (30) days of
// samples through dashd's own Store (raw chunks, 1-minute and 1-hour
// rollups). The steps then: open the 30-day view (timed), pick 24 h,
// drag-zoom to 1 h and then to about 10 minutes (every chart shows the same
// range, the address changed), reload the address (same view), hover (the
// crosshair and values on every chart), go back to live (no seq gap: the
// stream kept arriving while the past was shown), broadcast a notification
// (a marker on the charts, its title on hover, opened on click), compare the
// chart's CSV export with the `history` reply it drew from value by value,
// and show a refused range's server error in every chart. Then the profiler:
// repeated zoom / pan / zoom-out / back-to-live cycles on the 30-day data,
// with the frame intervals and the heap at the start and end printed as
// `EXPLORER_*` lines (reported in docs/benchmarks.md, not asserted).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe } from 'node:test';
import { launchChromium, recordFrames } from './lib/browser.mjs';
import { Dashd, FRONTEND_DIR, dashdBinDir, freePort, waitFor } from './lib/dashd.mjs';
import { checkA11y as checkA11yOn } from './lib/a11y.mjs';
import { orderedSteps } from './lib/steps.mjs';

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const SUITE_DEADLINE_MS = 12 * MINUTE_MS;
const UI_TIMEOUT_MS = 20 * SECOND_MS;
const DAYS = Number(process.env.EXPLORER_DAYS || 30);
/** Profiler cycles (zoom, pan, zoom out, back to live); the 30-minute session, shortened. */
const CYCLES = Number(process.env.EXPLORER_CYCLES || 25);
const HOST = 'explorer-e2e';
const DESKTOP = { width: 1440, height: 900 };
const CHARTS = ['cpu', 'memory', 'network', 'disk', 'connections'];
/** Range ends are whole seconds; a drag lands within a pixel's worth. */
const SAME_RANGE_SLACK_MS = 2 * SECOND_MS;

const ARTIFACTS = path.join(FRONTEND_DIR, 'e2e', 'artifacts');
const DIST = path.join(FRONTEND_DIR, 'dist');

let stateDir;
let dashd;
let browser;
let page;
let frames;
const pageErrors = [];
/** The 10-minute view reached by zooming, and its address. */
let zoomed = null;
let zoomedUrl = null;

const watchdog = setTimeout(() => {
  console.error(`explorer e2e: suite deadline of ${SUITE_DEADLINE_MS / 1000} s exceeded; aborting`);
  dashd?.killNow();
  process.exit(1);
}, SUITE_DEADLINE_MS);
watchdog.unref();
process.on('exit', () => dashd?.killNow());

const status = () => page.getByTestId('connection-status');

async function expectConnected() {
  await waitFor(async () => (await status().getAttribute('data-state')) === 'connected', { timeoutMs: UI_TIMEOUT_MS, message: 'connected' });
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** Every chart's range, points, loading/error state, crosshair and plot area. */
function chartStates() {
  return page.evaluate((ids) => {
    const out = {};
    for (const id of ids) {
      const c = window.__dashd?.chart(id);
      if (!c) continue;
      out[id] = {
        xMin: c.xMin,
        xMax: c.xMax,
        points: c.datasets.reduce((n, d) => n + d.points, 0),
        loading: document.querySelector(`[data-testid="chart-${id}"]`)?.getAttribute('aria-busy') === 'true',
        error: document.querySelector(`[data-testid="error-${id}"]`)?.textContent ?? null,
        crosshair: c.crosshair,
        area: c.area,
        tooltip: window.__dashd.tooltip(id),
      };
    }
    return out;
  }, CHARTS);
}

/** Waits until every chart shows `spanMs` (± slack), loaded, with data; returns the states. */
async function chartsReady(spanMs, message) {
  return waitFor(
    async () => {
      const s = await chartStates();
      const all = CHARTS.map((id) => s[id]);
      const ok = all.every((c) => c && !c.loading && c.error === null && c.points > 0 && Math.abs(c.xMax - c.xMin - spanMs) <= SAME_RANGE_SLACK_MS);
      return ok ? s : null;
    },
    { timeoutMs: UI_TIMEOUT_MS, intervalMs: 20, message },
  );
}

/** Every chart shows the same range (the first chart's). */
function assertSameRange(states) {
  const { xMin, xMax } = states[CHARTS[0]];
  for (const id of CHARTS) {
    assert.equal(states[id].xMin, xMin, `${id} starts where ${CHARTS[0]} starts`);
    assert.equal(states[id].xMax, xMax, `${id} ends where ${CHARTS[0]} ends`);
  }
}

/** The page x/y of time `t` on a chart (its plot's vertical middle). */
async function pointOf(id, state, t) {
  // The mouse only reaches what is inside the viewport.
  const canvas = page.getByTestId(`chart-${id}`).locator('canvas');
  await canvas.scrollIntoViewIfNeeded();
  const box = await canvas.boundingBox();
  const { area, xMin, xMax } = state;
  return {
    x: box.x + area.left + ((t - xMin) / (xMax - xMin)) * (area.right - area.left),
    y: box.y + (area.top + area.bottom) / 2,
  };
}

async function dragOn(id, state, fromT, toT, { shift = false } = {}) {
  const a = await pointOf(id, state, fromT);
  const b = await pointOf(id, state, toT);
  if (shift) await page.keyboard.down('Shift');
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(b.x, b.y, { steps: 6 });
  await page.mouse.up();
  if (shift) await page.keyboard.up('Shift');
}

const checkA11y = (label) => checkA11yOn(page, label);

function parseCsv(text) {
  const [header, ...lines] = text.trim().split(/\r?\n/);
  assert.equal(header, 'host,metric,time,timestamp_ms,avg,min,max,count');
  const byMetric = {};
  for (const line of lines) {
    const [, metric, , t, avg, min, max, count] = line.split(',');
    (byMetric[metric] ||= []).push({ t: Number(t), avg: Number(avg), min: Number(min), max: Number(max), count: Number(count) });
  }
  return byMetric;
}

describe('time explorer against a real dashd with 30 days of data', { concurrency: false }, () => {
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), 'dist/ is built (npm run build)');
    const binDir = dashdBinDir();
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashd-explorer-'));
    const prefill = spawnSync(path.join(binDir, 'python'), [path.join(FRONTEND_DIR, 'e2e', 'lib', 'prefill_store.py'), `sqlite:///${stateDir}/dashd.db`, HOST, '--days', String(DAYS)], {
      encoding: 'utf8',
    });
    assert.equal(prefill.status, 0, `prefill failed: ${prefill.stderr}`);
    console.log(prefill.stdout.trim());
    // max_history_span pinned at 30 d, so a 1-year range is refused whatever the default becomes.
    dashd = new Dashd({ binDir, port: await freePort(), stateDir, staticDir: DIST, extraArgs: ['--host-name', HOST, '--max-history-span', '30d'] });
    await dashd.start();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
    page = await context.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    frames = recordFrames(page);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    if (run.failed && dashd) console.error(`--- dashd log (last lines) ---\n${dashd.logTail(60)}`);
    await browser?.close().catch(() => {});
    await dashd?.stop();
    if (stateDir) fs.rmSync(stateDir, { recursive: true, force: true });
    clearTimeout(watchdog);
  });

  const { step, run } = orderedSteps({ page: () => page, status, artifacts: ARTIFACTS, prefix: 'explorer-failure-' });

  step('signs in', async () => {
    const password = await dashd.adminPassword();
    await page.goto(dashd.baseUrl);
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expectConnected();
  });

  step('opens the 30-day view with every chart fully drawn (timed)', async () => {
    const started = Date.now();
    await page.goto(`${dashd.baseUrl}/?range=30d`);
    const states = await chartsReady(30 * DAY_MS, 'every chart drawn over 30 days');
    const elapsed = Date.now() - started;
    console.log(`EXPLORER open_30d_ms=${elapsed} days=${DAYS} points_cpu=${states.cpu.points}`);
    assert.ok(states.cpu.points > 100, 'the 30 days of the prefilled store are drawn');
    assertSameRange(states);
  });

  step('picks 24 h: every chart shows 24 h and the address says so', async () => {
    await page.getByRole('radio', { name: '24 h' }).check();
    const states = await chartsReady(DAY_MS, 'every chart over 24 h');
    assertSameRange(states);
    assert.equal(new URL(page.url()).searchParams.get('range'), '24h');
  });

  step('drag-zooms to 1 h, then to about 10 minutes: all charts share the range and the address changed', async () => {
    let states = await chartStates();
    const end = states.cpu.xMax - 2 * HOUR_MS;
    await dragOn('cpu', states.cpu, end - HOUR_MS, end);
    states = await waitFor(
      async () => {
        const s = await chartStates();
        return Math.abs(s.cpu.xMax - s.cpu.xMin - HOUR_MS) < 10 * MINUTE_MS && !s.cpu.loading ? s : null;
      },
      { timeoutMs: UI_TIMEOUT_MS, message: 'zoomed to about 1 h' },
    );
    const hourSpan = states.cpu.xMax - states.cpu.xMin;
    await chartsReady(hourSpan, 'every chart over the hour');
    const from = states.cpu.xMin + 20 * MINUTE_MS;
    await dragOn('memory', states.memory, from, from + 10 * MINUTE_MS);
    states = await waitFor(
      async () => {
        const s = await chartStates();
        return Math.abs(s.cpu.xMax - s.cpu.xMin - 10 * MINUTE_MS) < MINUTE_MS && !s.cpu.loading ? s : null;
      },
      { timeoutMs: UI_TIMEOUT_MS, message: 'zoomed to about 10 minutes' },
    );
    states = await chartsReady(states.cpu.xMax - states.cpu.xMin, 'every chart over the 10 minutes');
    assertSameRange(states);
    const q = new URL(page.url()).searchParams;
    assert.equal(Number(q.get('from')), states.cpu.xMin, 'the address holds the start');
    assert.equal(Number(q.get('to')), states.cpu.xMax, 'the address holds the end');
    assert.equal(q.get('range'), null);
    zoomed = { xMin: states.cpu.xMin, xMax: states.cpu.xMax };
    zoomedUrl = page.url();
    await checkA11y('explorer-zoomed');
  });

  step('reloading the address gives the same view', async () => {
    await page.reload();
    await expectConnected();
    const states = await chartsReady(zoomed.xMax - zoomed.xMin, 'the same view after reload');
    assertSameRange(states);
    assert.deepEqual({ xMin: states.cpu.xMin, xMax: states.cpu.xMax }, zoomed);
  });

  step('hovering one chart shows the crosshair and values at that moment on every chart', async () => {
    const states = await chartStates();
    const t = (zoomed.xMin + zoomed.xMax) / 2;
    const p = await pointOf('disk', states.disk, t);
    await page.mouse.move(p.x, p.y);
    const hovered = await waitFor(
      async () => {
        const s = await chartStates();
        return CHARTS.every((id) => s[id].crosshair !== null && s[id].tooltip > 0) ? s : null;
      },
      { timeoutMs: UI_TIMEOUT_MS, message: 'crosshair and tooltip on every chart' },
    ).catch(async (err) => {
      console.error(`hover states: ${JSON.stringify(await chartStates())}`);
      throw err;
    });
    const at = hovered.cpu.crosshair;
    assert.ok(Math.abs(at - t) < MINUTE_MS / 10, 'the crosshair is where the pointer is');
    for (const id of CHARTS) assert.equal(hovered[id].crosshair, at, `${id} shows the same moment`);
    await page.mouse.move(0, 0);
  });

  step('the CSV export of the range matches the history the chart drew, value by value', async () => {
    const href = await page.getByTestId('export-csv-cpu').getAttribute('href');
    const q = new URL(href, dashd.baseUrl).searchParams;
    assert.equal(Number(q.get('from')) * 1000, zoomed.xMin);
    assert.equal(Number(q.get('to')) * 1000, zoomed.xMax);
    const metrics = q.get('metrics').split(',');
    const request = frames.findLast(
      (f) => f.dir === 'sent' && f.msg.type === 'history' && f.msg.data.from * 1000 === zoomed.xMin && f.msg.data.to * 1000 === zoomed.xMax && f.msg.data.metrics.join(',') === metrics.join(','),
    );
    assert.ok(request, 'the cpu chart asked history for this range');
    assert.equal(String(request.msg.data.max_points), q.get('max_points'), 'same number of buckets');
    // Correlation ids are per connection: the reply on the same socket.
    const reply = frames.find((f) => f.dir === 'received' && f.socket === request.socket && f.msg.type === 'history' && f.msg.correlation_id === request.msg.correlation_id);
    assert.ok(reply, 'history replied');
    const csv = await page.evaluate(async (url) => {
      const res = await fetch(url);
      return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
    }, href);
    assert.equal(csv.status, 200, csv.text.slice(0, 200));
    const exported = parseCsv(csv.text);
    let compared = 0;
    for (const metric of metrics) {
      const drawn = reply.msg.data.series[metric] || [];
      const rows = exported[metric] || [];
      assert.equal(rows.length, drawn.length, `${metric}: as many CSV rows as history buckets`);
      drawn.forEach((p, i) => {
        assert.deepEqual(rows[i], { t: p.t, avg: p.avg, min: p.min, max: p.max, count: p.count }, `${metric} bucket ${i}`);
        compared += 1;
      });
    }
    assert.ok(compared > 0, 'some buckets compared');
    console.log(`EXPLORER export_csv_buckets_compared=${compared}`);
  });

  step('back to live resumes with no seq gap: the stream kept arriving while the past was shown', async () => {
    const before = await page.evaluate(() => window.__dashd.lastSeq());
    // Live data arrives in the background; the past view does not move.
    await waitFor(async () => (await page.evaluate(() => window.__dashd.lastSeq())) >= before + 6, { message: 'samples while the past is shown' });
    const still = await chartStates();
    assert.deepEqual({ xMin: still.cpu.xMin, xMax: still.cpu.xMax }, zoomed, 'the past view did not jump');
    await page.getByTestId('back-to-live').click();
    await waitFor(async () => new URL(page.url()).searchParams.get('range') === '24h', { message: 'back to the live 24 h' });
    await chartsReady(DAY_MS, 'every chart live over 24 h');
    await waitFor(async () => (await page.evaluate(() => window.__dashd.lastSeq())) > before + 2, { message: 'the stream goes on' });
    const seqs = await page.evaluate(() => window.__dashd.streamSeqs());
    const since = seqs.filter((s) => s >= seqs[0]);
    const missing = [];
    for (let s = since[0]; s <= since[since.length - 1]; s += 1) if (!since.includes(s)) missing.push(s);
    assert.deepEqual(missing, [], `stream seqs ${since[0]}..${since[since.length - 1]} without a gap`);
    assert.ok(since[0] <= before && since.at(-1) >= before + 6, `the seqs received while the past was shown are held (${since[0]}..${since.at(-1)}, ${since.length} seqs, lastSeq before ${before}), and the stream goes on`);
  });

  step('a notification raised now appears as a marker: its title on hover, opened on click', async () => {
    await page.getByRole('radio', { name: '5 min', exact: true }).check();
    const title = `explorer marker ${Date.now()}`;
    const form = page.getByRole('form', { name: 'Broadcast a notification' });
    await form.getByLabel('Title').fill(title);
    await form.getByRole('button', { name: 'Send' }).click();
    const marker = page.getByTestId('annotation-cpu').filter({ hasText: title });
    await marker.waitFor();
    const note = await waitFor(() => frames.find((f) => f.dir === 'received' && f.msg.type === 'notification' && f.msg.data.title === title), { message: 'the notification frame' });
    const t = Date.parse(note.msg.data.timestamp);
    const tip = page.getByTestId('note-tip-cpu');
    await waitFor(
      async () => {
        const s = await chartStates();
        const p = await pointOf('cpu', s.cpu, t);
        await page.mouse.move(p.x, p.y);
        return (await tip.count()) && (await tip.innerText()).includes(title);
      },
      { timeoutMs: UI_TIMEOUT_MS, message: 'the marker shows its title on hover' },
    );
    await marker.click();
    const dialog = page.getByTestId('notification-dialog');
    await dialog.waitFor();
    assert.match(await dialog.innerText(), new RegExp(title));
    await dialog.getByRole('button', { name: 'Close' }).click();
    await page.mouse.move(0, 0);
  });

  step('a range longer than the server allows shows its error in every chart', async () => {
    await page.goto(`${dashd.baseUrl}/?range=1y`);
    await expectConnected();
    const states = await waitFor(
      async () => {
        const s = await chartStates();
        return CHARTS.every((id) => s[id]?.error) ? s : null;
      },
      { timeoutMs: UI_TIMEOUT_MS, message: 'an error in every chart' },
    );
    console.log(`EXPLORER refused_range_error="${states.cpu.error}"`);
    assert.match(states.cpu.error, /span|too|long|max/i);
  });

  step('profiler: repeated zoom / pan / zoom-out / back-to-live over 30 days (frames and heap)', async () => {
    await page.goto(`${dashd.baseUrl}/?range=30d`);
    await expectConnected();
    await chartsReady(30 * DAY_MS, '30 days drawn');
    const cdp = await page.context().newCDPSession(page);
    const heap = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      return (await cdp.send('Runtime.getHeapUsage')).usedSize;
    };
    const heapStart = await heap();
    const pointsStart = await page.evaluate(() => window.__dashd.pointCount());
    await page.evaluate(() => {
      const w = window;
      w.__frames = [];
      let last = performance.now();
      const tick = (now) => {
        w.__frames.push(now - last);
        last = now;
        if (w.__frames) w.__raf = requestAnimationFrame(tick);
      };
      w.__raf = requestAnimationFrame(tick);
    });
    const started = Date.now();
    for (let i = 0; i < CYCLES; i += 1) {
      let s = await chartStates();
      const mid = (s.cpu.xMin + s.cpu.xMax) / 2;
      const third = (s.cpu.xMax - s.cpu.xMin) / 6;
      await dragOn('cpu', s.cpu, mid - third, mid + third);
      s = await waitFor(async () => {
        const st = await chartStates();
        return st.cpu.xMax - st.cpu.xMin < 0.5 * 30 * DAY_MS && CHARTS.every((id) => !st[id].loading) ? st : null;
      }, { message: 'zoomed' });
      await dragOn('cpu', s.cpu, mid, mid + third / 2, { shift: true });
      await page.getByRole('button', { name: 'Earlier (pan left)' }).click();
      await page.getByRole('button', { name: 'Zoom out' }).click();
      await waitFor(async () => Object.values(await chartStates()).every((c) => !c.loading), { message: 'zoomed out' });
      await page.getByTestId('back-to-live').click();
      await chartsReady(30 * DAY_MS, 'back to 30 days');
    }
    const seconds = (Date.now() - started) / 1000;
    const intervals = await page.evaluate(() => {
      const f = window.__frames;
      window.__frames = null;
      cancelAnimationFrame(window.__raf);
      return f.slice(1);
    });
    const heapEnd = await heap();
    const pointsEnd = await page.evaluate(() => window.__dashd.pointCount());
    const mb = (b) => (b / 1024 / 1024).toFixed(1);
    console.log(
      `EXPLORER_FRAMES frame_interval_ms_p50=${percentile(intervals, 50).toFixed(1)} p95=${percentile(intervals, 95).toFixed(1)} ` +
        `max=${Math.max(...intervals).toFixed(1)} frames=${intervals.length} cycles=${CYCLES} seconds=${seconds.toFixed(0)}`,
    );
    // The live buffer keeps growing underneath (up to 1 h): its point count tells that growth apart.
    console.log(`EXPLORER_HEAP start_mb=${mb(heapStart)} end_mb=${mb(heapEnd)} live_points_start=${pointsStart} live_points_end=${pointsEnd} cycles=${CYCLES} seconds=${seconds.toFixed(0)}`);
    assert.deepEqual(pageErrors, [], 'no uncaught page errors');
  });
});
