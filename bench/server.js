#!/usr/bin/env node
// The Node `ws` baseline for `make bench`: an idiomatic broadcast server
// that publishes the same ~300-byte metrics_update envelope dashd sends, at
// the rate the bench asks for, serialized once and sent per client with
// `ws.send` (what a Node service would do). Loopback only.
//
//   node server.js --port 0 --metrics '{"cpu_usage":12.5,...}' [--tls-key K --tls-cert C] [--deflate]
//
// stdout: one JSON line per event ({"event":"ready","port":N}, stats replies).
// stdin:  "rate HZ" (0 stops publishing), "stats", "quit".
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const readline = require('readline');
const { WebSocketServer, WebSocket } = require('ws');

function parseArgs(argv) {
  const args = { port: 0, rate: 0, metrics: '{}', host: 'bench-0', deflate: false, windowBits: 11, memLevel: 4 };
  for (let i = 2; i < argv.length; i++) {
    const key = argv[i];
    const take = () => argv[++i];
    if (key === '--port') args.port = Number(take());
    else if (key === '--rate') args.rate = Number(take());
    else if (key === '--metrics') args.metrics = take();
    else if (key === '--host-name') args.host = take();
    else if (key === '--tls-key') args.tlsKey = take();
    else if (key === '--tls-cert') args.tlsCert = take();
    else if (key === '--deflate') args.deflate = true;
    else if (key === '--window-bits') args.windowBits = Number(take());
    else if (key === '--mem-level') args.memLevel = Number(take());
    else throw new Error(`unknown option ${key}`);
  }
  return args;
}

const args = parseArgs(process.argv);
const baseMetrics = JSON.parse(args.metrics);
const names = Object.keys(baseMetrics);

const server = args.tlsKey
  ? https.createServer({ key: fs.readFileSync(args.tlsKey), cert: fs.readFileSync(args.tlsCert) })
  : http.createServer();
server.on('request', (req, res) => { res.writeHead(404); res.end(); });

// Same deflate parameters as dashd: no context takeover, 2^11 window, memLevel 4,
// every message compressed (ws' default threshold would skip ~300-byte ones).
const perMessageDeflate = args.deflate ? {
  threshold: 0,
  serverNoContextTakeover: true,
  serverMaxWindowBits: args.windowBits,
  zlibDeflateOptions: { memLevel: args.memLevel },
} : false;
const wss = new WebSocketServer({ server, perMessageDeflate, clientTracking: true });

let seq = 0;
let published = 0;
wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', () => {});
  ws.send(JSON.stringify({ type: 'connection_ack', correlation_id: null, data: { seq, host: args.host } }));
});

function sample(n) {
  // The same slow wander dashd's bench publisher uses (values only vary).
  const metrics = {};
  for (let i = 0; i < names.length; i++) {
    const base = baseMetrics[names[i]];
    metrics[names[i]] = Math.round((base + ((n * (i + 3)) % 97) / 10) * 100) / 100;
  }
  return metrics;
}

function publish() {
  seq += 1;
  published += 1;
  const message = {
    type: 'metrics_update', seq, correlation_id: null,
    data: { timestamp: new Date().toISOString(), host: args.host, metrics: sample(seq) },
  };
  const data = Buffer.from(JSON.stringify(message));
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) client.send(data, { binary: false });
  }
}

// The schedule dashd's collector uses (dashd.collect.schedule): on time
// when it can be; a tick that ends past the next deadline starts the next
// one at once, without bursting to catch up, and the periods it ran over
// are counted as coalesced (the next sample covers them) -- not skipped.
let timer = null;
let period = 0;
let next = 0;
let lagPeriods = 0;
function tick() {
  timer = null;
  if (period <= 0) return;
  publish();
  next += period;
  const now = performance.now();
  if (next < now) {
    lagPeriods += (now - next) / period;
    next = now;
  }
  timer = setTimeout(tick, Math.max(0, next - performance.now()));
}
function setRate(hz) {
  if (timer !== null) clearTimeout(timer);
  timer = null;
  period = hz > 0 ? 1000 / hz : 0;
  if (period > 0) {
    next = performance.now() + period;
    timer = setTimeout(tick, period);
  }
}

function emit(object) {
  process.stdout.write(JSON.stringify(object) + '\n');
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, value] = line.trim().split(/\s+/);
  if (command === 'rate') setRate(Number(value));
  else if (command === 'stats') emit({ event: 'stats', published, clients: wss.clients.size, seq, ticks_coalesced: Math.floor(lagPeriods), at: performance.now() / 1000 });
  else if (command === 'quit') shutdown();
}).on('close', () => shutdown());

function shutdown() {
  setRate(0);
  for (const client of wss.clients) client.terminate();
  server.close();
  process.exit(0);
}

server.listen({ port: args.port, host: '127.0.0.1', backlog: 4096 }, () => {
  emit({ event: 'ready', port: server.address().port, pid: process.pid });
  if (args.rate > 0) setRate(args.rate);
});
