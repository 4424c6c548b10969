// The load driver of bench/realtime/run.sh: raw WebSocket clients speaking just enough Engine.IO
// v4 / Socket.IO v5 (open, ping -> pong, CONNECT, EVENT, ACK), lighter than socket.io-client, so
// that the server, not the client, is what is measured.
//
//   node driver.js paced URL CLIENTS RATE SECONDS   CLIENTS join room "bench"; a controller
//        emits "broadcast" RATE times a second for SECONDS; prints JSON {deliveries, expected,
//        p50, p99, max (ms, emit to delivery), seconds}
//   node driver.js burst URL CLIENTS COUNT          COUNT broadcasts back to back; prints JSON
//        {deliveries, expected, seconds, rate}
//   node driver.js idle URL CLIENTS                 opens CLIENTS connected sockets, prints
//        "ready" and holds them until stdin closes
'use strict';
const WebSocket = require('ws');
const { performance } = require('node:perf_hooks');

const [mode, base, nClients, a, b] = process.argv.slice(2);
const fs = require('node:fs');
// the server's CPU seconds (utime + stime of /proc/PID/stat), PID from SERVER_PID;
// cpu.user: utime alone (the server's own code, without the kernel's TCP work)
function stat() {
  const pid = process.env.SERVER_PID;
  if (!pid) return [0, 0];
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return [Number(rest[11]) / 100, Number(rest[12]) / 100]; // USER_HZ is 100 on Linux
}
function cpu() { const [u, k] = stat(); return u + k; }
cpu.user = () => stat()[0];
const N = Number(nClients);
const wsUrl = base.replace(/^http/, 'ws') + '/socket.io/?EIO=4&transport=websocket';
const PAD = 'x'.repeat(100);

function client(onEvent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    let ackId = 0;
    const acks = new Map();
    const c = {
      ws,
      emit(ev, payload) { ws.send('42' + JSON.stringify([ev, payload])); },
      call(ev) {
        const id = ackId++;
        return new Promise((res) => { acks.set(id, res); ws.send('42' + id + JSON.stringify([ev])); });
      },
    };
    ws.on('message', (data) => {
      const m = data.toString();
      if (m === '2') return ws.send('3');
      if (m.startsWith('40')) return resolve(c);
      if (m.startsWith('42')) return onEvent && onEvent(m);
      if (m.startsWith('43')) {
        const id = parseInt(m.slice(2), 10);
        const r = acks.get(id);
        if (r) { acks.delete(id); r(); }
      }
      if (m[0] === '0') ws.send('40');
    });
    ws.on('error', reject);
  });
}

async function many(n, onEvent) {
  const out = [];
  for (let i = 0; i < n; i += 200) { // connect in waves: a listen backlog is finite
    const wave = [];
    for (let j = i; j < Math.min(n, i + 200); j++) wave.push(client(onEvent));
    out.push(...await Promise.all(wave));
  }
  return out;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function paced(rate, seconds) {
  const lat = [];
  const onEvent = (m) => {
    const t = performance.now();
    const i = m.indexOf('"t":');
    lat.push(t - parseFloat(m.slice(i + 4)));
  };
  const clients = await many(N, onEvent);
  await Promise.all(clients.map((c) => c.call('join')));
  const ctl = await client(null);
  const total = Math.round(rate * seconds);
  const c0 = cpu(), u0 = cpu.user();
  const t0 = performance.now();
  for (let s = 0; s < total; s++) {
    const due = t0 + (s * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    ctl.emit('broadcast', { s, p: PAD, t: performance.now() });
  }
  const expected = total * N;
  const end = performance.now() + 5000;
  while (lat.length < expected && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
  const cpuSeconds = cpu() - c0, userSeconds = cpu.user() - u0;
  const sorted = lat.slice().sort((x, y) => x - y);
  const r = { deliveries: lat.length, expected, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99),
    max: sorted[sorted.length - 1], seconds: (performance.now() - t0) / 1000, cpuSeconds, userSeconds };
  for (const c of [...clients, ctl]) c.ws.terminate();
  return r;
}

async function burst(count) {
  let got = 0;
  let done;
  const all = new Promise((r) => { done = r; });
  const expected = count * N;
  const clients = await many(N, () => { if (++got === expected) done(); });
  await Promise.all(clients.map((c) => c.call('join')));
  const ctl = await client(null);
  const c0 = cpu();
  const t0 = performance.now();
  for (let s = 0; s < count; s++) ctl.emit('broadcast', { s, p: PAD, t: 0 });
  await Promise.race([all, new Promise((r) => setTimeout(r, 60000))]);
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = cpu() - c0;
  for (const c of [...clients, ctl]) c.ws.terminate();
  return { deliveries: got, expected, seconds, rate: got / seconds, cpuSeconds };
}

async function idle() {
  const clients = await many(N, null);
  console.log('ready ' + clients.length);
  process.stdin.resume();
  process.stdin.on('end', () => { for (const c of clients) c.ws.terminate(); process.exit(0); });
}

(async () => {
  if (mode === 'paced') console.log(JSON.stringify(await paced(Number(a), Number(b))));
  else if (mode === 'burst') console.log(JSON.stringify(await burst(Number(a))));
  else if (mode === 'idle') return idle();
  else throw new Error('mode: paced | burst | idle');
  process.exit(0);
})().catch((e) => { console.error('driver: ' + (e && e.stack || e)); process.exit(1); });
