// Headless Debian Chromium driven by playwright-core (which never downloads a
// browser): CHROMIUM_PATH or /usr/bin/chromium.

import fs from 'node:fs';
import { chromium } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: apt-get install -y chromium, or set CHROMIUM_PATH`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/**
 * Record every WebSocket text frame the page sends and receives, parsed, in
 * arrival order: `{dir: 'sent'|'received', t, msg, url, socket}` (socket:
 * 1, 2, … per WebSocket the page opened).
 */
export function recordFrames(page) {
  const frames = [];
  let sockets = 0;
  page.on('websocket', (ws) => {
    sockets += 1;
    const socket = sockets;
    const add = (dir) => (f) => {
      let msg = null;
      try {
        msg = JSON.parse(typeof f.payload === 'string' ? f.payload : f.payload.toString('utf8'));
      } catch {
        return;
      }
      frames.push({ dir, t: Date.now(), msg, url: ws.url(), socket });
    };
    ws.on('framesent', add('sent'));
    ws.on('framereceived', add('received'));
  });
  return frames;
}
