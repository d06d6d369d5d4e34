#!/usr/bin/env node
// Load generator for `make bench`: one process holds --count WebSocket
// clients (the bench starts several processes). Each client authenticates on
// the handshake (Bearer token), then only reads. Per message it reads `seq`
// and the sample's `timestamp` without a full JSON parse (the generator must
// not be the bottleneck) and records latency = receipt - timestamp (same
// machine, same clock) into a 0.25 ms histogram.
//
//   node client.js --url ws://127.0.0.1:P/dashboard --token T --count N
//                  [--deflate] [--concurrency 32] [--subscribe-fraction F --subscribe-metrics a,b]
//                  [--throttle-fraction F --throttle-hz H] [--id K]
//
// stdout: {"event":"connected",...} once every client is connected or has
// failed, then one {"event":"report",...} per "report" on stdin.
// stdin:  "reset" (start a measurement window), "report", "quit".
'use strict';

const readline = require('readline');
const { WebSocket } = require('ws');

function parseArgs(argv) {
  const args = {
    url: '', token: '', count: 1, deflate: false, concurrency: 32, id: 0,
    subscribeFraction: 0, subscribeMetrics: [], throttleFraction: 0, throttleHz: 1, retries: 3,
  };
  for (let i = 2; i < argv.length; i++) {
    const key = argv[i];
    const take = () => argv[++i];
    if (key === '--url') args.url = take();
    else if (key === '--token') args.token = take();
    else if (key === '--count') args.count = Number(take());
    else if (key === '--deflate') args.deflate = true;
    else if (key === '--concurrency') args.concurrency = Number(take());
    else if (key === '--id') args.id = Number(take());
    else if (key === '--subscribe-fraction') args.subscribeFraction = Number(take());
    else if (key === '--subscribe-metrics') args.subscribeMetrics = take().split(',').filter(Boolean);
    else if (key === '--throttle-fraction') args.throttleFraction = Number(take());
    else if (key === '--throttle-hz') args.throttleHz = Number(take());
    else throw new Error(`unknown option ${key}`);
  }
  if (!/^wss?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//.test(args.url)) {
    throw new Error(`loopback targets only: ${args.url}`);
  }
  return args;
}

const args = parseArgs(process.argv);

const BUCKET_MS = 0.25;
const BUCKETS = 40000; // 10 s; anything later lands in the last bucket (max is kept exactly)
const UPDATE_PREFIX = Buffer.from('{"type":"metrics_update","seq":');
const TIMESTAMP_KEY = Buffer.from('"timestamp":"');
const DEGRADED = Buffer.from('"stream_degraded"');

let hist = new Uint32Array(BUCKETS);
let window = { received: 0, receivedFull: 0, maxMs: 0, started: performance.now(), bytesAtStart: 0 };
const totals = { missing: 0, outOfOrder: 0, other: 0, degraded: 0, unexpectedCloses: 0 };
const clients = [];
let lastSeq = -1;
let lastStamp = 0;

function now() {
  return performance.timeOrigin + performance.now();
}

function stampOf(data, from, seq) {
  if (seq === lastSeq) return lastStamp;
  const at = data.indexOf(TIMESTAMP_KEY, from);
  if (at < 0) return NaN;
  const start = at + TIMESTAMP_KEY.length;
  lastSeq = seq;
  lastStamp = Date.parse(data.toString('latin1', start, start + 24));
  return lastStamp;
}

function onMessage(client, data) {
  if (Array.isArray(data)) data = Buffer.concat(data);
  if (data.length > UPDATE_PREFIX.length && data.compare(UPDATE_PREFIX, 0, UPDATE_PREFIX.length, 0, UPDATE_PREFIX.length) === 0) {
    let i = UPDATE_PREFIX.length;
    let seq = 0;
    for (let c = data[i]; c >= 48 && c <= 57; c = data[++i]) seq = seq * 10 + (c - 48);
    const latency = now() - stampOf(data, i, seq);
    window.received++;
    if (latency >= 0) {
      const bucket = Math.min(BUCKETS - 1, Math.floor(latency / BUCKET_MS));
      hist[bucket]++;
      if (latency > window.maxMs) window.maxMs = latency;
    } else {
      hist[0]++;
    }
    if (client.full) {
      window.receivedFull++;
      if (client.last > 0) {
        if (seq > client.last + 1) totals.missing += seq - client.last - 1;
        else if (seq <= client.last) totals.outOfOrder++;
      }
      if (seq > client.last) client.last = seq;
    }
    return;
  }
  totals.other++;
  if (data.indexOf(DEGRADED) >= 0) totals.degraded++;
  if (!client.configured) {
    // The first message is connection_ack: apply this client's subscription mix.
    client.configured = true;
    if (client.subscribe) {
      client.ws.send(JSON.stringify({ type: 'subscribe', data: { metrics: args.subscribeMetrics } }));
    }
    if (client.throttle) {
      client.ws.send(JSON.stringify({ type: 'set_rate', data: { max_hz: args.throttleHz } }));
    }
  }
}

function bytesRead() {
  let total = 0;
  for (const client of clients) {
    const socket = client.ws && client.ws._socket;
    if (socket) total += socket.bytesRead;
    else total += client.bytesAtClose || 0;
  }
  return total;
}

function connectOne(index, attempt, done) {
  const started = performance.now();
  const options = {
    headers: { Authorization: `Bearer ${args.token}` },
    perMessageDeflate: args.deflate ? { clientNoContextTakeover: true } : false,
    rejectUnauthorized: false, // loopback with the bench's self-signed certificate
    handshakeTimeout: 30000,
    skipUTF8Validation: false,
  };
  const ws = new WebSocket(args.url, options);
  const client = clients[index] || { last: 0, full: true, configured: false };
  clients[index] = client;
  client.ws = ws;
  const fraction = (index + 0.5) / args.count;
  client.subscribe = fraction < args.subscribeFraction;
  client.throttle = !client.subscribe && fraction < args.subscribeFraction + args.throttleFraction;
  client.full = !client.subscribe && !client.throttle;
  let opened = false;
  ws.on('open', () => {
    opened = true;
    client.handshakeMs = performance.now() - started;
    done(true);
  });
  ws.on('message', (data) => onMessage(client, data));
  ws.on('error', () => {});
  ws.on('close', () => {
    if (ws._socket) client.bytesAtClose = ws._socket.bytesRead;
    if (!opened) {
      if (attempt < args.retries) setTimeout(() => connectOne(index, attempt + 1, done), 200 * (attempt + 1));
      else done(false);
    } else if (!shuttingDown) {
      totals.unexpectedCloses++;
    }
  });
}

function emit(object) {
  process.stdout.write(JSON.stringify(object) + '\n');
}

let shuttingDown = false;
const connectStarted = performance.now();
let nextIndex = 0;
let settled = 0;
let ok = 0;
function startMore() {
  while (nextIndex < args.count && nextIndex - settled < args.concurrency) {
    const index = nextIndex++;
    connectOne(index, 0, (success) => {
      settled++;
      if (success) ok++;
      if (settled === args.count) {
        const handshakes = clients.filter((c) => c.handshakeMs !== undefined).map((c) => c.handshakeMs).sort((a, b) => a - b);
        emit({
          event: 'connected', id: args.id, ok, failed: args.count - ok,
          connect_ms: performance.now() - connectStarted,
          handshake_p50_ms: handshakes.length ? handshakes[Math.floor(handshakes.length * 0.5)] : null,
          handshake_p99_ms: handshakes.length ? handshakes[Math.floor(handshakes.length * 0.99)] : null,
        });
      } else {
        startMore();
      }
    });
  }
}
startMore();

function report() {
  const sparse = {};
  for (let i = 0; i < BUCKETS; i++) if (hist[i]) sparse[i] = hist[i];
  let open = 0;
  for (const client of clients) if (client.ws && client.ws.readyState === WebSocket.OPEN) open++;
  emit({
    event: 'report', id: args.id,
    window_ms: performance.now() - window.started,
    received: window.received, received_full: window.receivedFull,
    full_clients: clients.filter((c) => c.full).length,
    bytes: bytesRead() - window.bytesAtStart,
    bucket_ms: BUCKET_MS, hist: sparse, max_ms: window.maxMs,
    missing: totals.missing, out_of_order: totals.outOfOrder, other: totals.other,
    degraded: totals.degraded, unexpected_closes: totals.unexpectedCloses, open,
  });
}

function reset() {
  hist = new Uint32Array(BUCKETS);
  window = { received: 0, receivedFull: 0, maxMs: 0, started: performance.now(), bytesAtStart: bytesRead() };
}

function quit() {
  shuttingDown = true;
  for (const client of clients) if (client.ws) client.ws.terminate();
  setTimeout(() => process.exit(0), 50);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim();
  if (command === 'reset') reset();
  else if (command === 'report') report();
  else if (command === 'quit') quit();
}).on('close', quit);

// Bounded: a generator the bench forgot is gone within the hour.
setTimeout(quit, 3600 * 1000).unref();
