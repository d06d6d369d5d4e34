// Start and stop a real dashd for the end-to-end tests: a free loopback port,
// a temporary state dir with a SQLite store, the built frontend as --static.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FRONTEND_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const READY_TIMEOUT_MS = 40_000;
export const STOP_TIMEOUT_MS = 15_000;
const POLL_MS = 200;

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Poll `fn` until it returns a truthy value (which is returned) or time runs out. */
export async function waitFor(fn, { timeoutMs = 10_000, intervalMs = POLL_MS, message = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}${last instanceof Error ? `: ${last.message}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** dashd's bin dir: $DASHD_BIN_DIR, else ../.venv/bin next to frontend/. */
export function dashdBinDir() {
  const dir = process.env.DASHD_BIN_DIR || path.resolve(FRONTEND_DIR, '..', '.venv', 'bin');
  for (const exe of ['twistd', 'dashd']) {
    if (!fs.existsSync(path.join(dir, exe))) {
      throw new Error(`${exe} not found in ${dir}: run 'make install' in the repository root or set DASHD_BIN_DIR`);
    }
  }
  return dir;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One dashd daemon that can be stopped and started again on the same port and state. */
export class Dashd {
  constructor({ binDir, port, stateDir, staticDir, interval = 0.5, extraArgs = [] }) {
    Object.assign(this, { binDir, port, stateDir, staticDir, interval, extraArgs });
    this.proc = null;
    this.starts = 0;
    this.baseUrl = `http://127.0.0.1:${port}`;
  }

  get logPath() {
    return path.join(this.stateDir, `dashd-${this.starts}.log`);
  }

  async start() {
    this.starts += 1;
    const log = fs.openSync(this.logPath, 'w');
    const args = [
      '-n', '--pidfile=', 'dashd',
      '--listen', `tcp:${this.port}:interface=127.0.0.1`,
      '--state-dir', this.stateDir,
      '--db', `sqlite:///${this.stateDir}/dashd.db`,
      '--static', this.staticDir,
      '--interval', String(this.interval),
      ...this.extraArgs,
    ];
    this.proc = spawn(path.join(this.binDir, 'twistd'), args, {
      cwd: this.stateDir,
      stdio: ['ignore', log, log],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    fs.closeSync(log);
    const proc = this.proc;
    proc.exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(
      async () => {
        if (proc.exitCode !== null) throw new Error(`dashd exited with ${proc.exitCode}; log:\n${this.logTail()}`);
        const res = await fetch(`${this.baseUrl}/api/ready`).catch(() => null);
        return res && res.status === 200;
      },
      { timeoutMs: READY_TIMEOUT_MS, message: 'dashd /api/ready' },
    );
  }

  /** SIGTERM (graceful: clients get 1001, the store is flushed); SIGKILL if it hangs. */
  async stop() {
    const proc = this.proc;
    this.proc = null;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await proc.exited;
    clearTimeout(timer);
  }

  /** Last-resort synchronous kill for process exit handlers. */
  killNow() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }

  async adminPassword() {
    const file = path.join(this.stateDir, 'initial-admin-password');
    const text = await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').trim(), {
      timeoutMs: 15_000,
      message: 'initial-admin-password',
    });
    return text;
  }

  logTail(lines = 40) {
    try {
      return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
