// The realtime API beyond the conformance server, through the official socket.io-client against
// tests/realtime/rooms_server.c: rooms and broadcasts, server emits with acks, disconnect
// reasons, middleware and JWT on the handshake, namespace patterns, per-socket data, the
// slow-client policy and posts from another thread.
// Env: SIO_URL (http://127.0.0.1:PORT), TB_TEST_JWT_SECRET (the server's HS256 secret).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const { io } = require('socket.io-client');
const WebSocket = require('ws');

const URL = process.env.SIO_URL;
const SECRET = process.env.TB_TEST_JWT_SECRET;
const T = { timeout: 10000 };

function jwt(claims, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);

function connect(path = '/', opts = {}) {
  const s = io(URL + path, { forceNew: true, transports: ['websocket'], reconnection: false, ...opts });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect ${path} timed out`)), 5000);
    s.once('connect', () => { clearTimeout(timer); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(timer); s.close(); reject(e); });
  });
}
const call = (s, ev, ...args) => s.timeout(5000).emitWithAck(ev, ...args);
function next(s, ev, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ev} within ${ms} ms`)), ms);
    s.once(ev, (...a) => { clearTimeout(timer); resolve(a); });
  });
}
// Collects every `ev` a socket receives until settle() (a round trip through the server, so
// anything broadcast before it has arrived: the server writes in order).
function recorder(s, ev) {
  const got = [];
  s.on(ev, (...a) => got.push(a));
  return { got, settle: async () => { await call(s, 'count', 'x'); return got; } };
}
const closeAll = (...ss) => ss.forEach((s) => s && s.close());

test('a room broadcast reaches its members once, minus the sender, minus excepted rooms', T, async () => {
  const [a, b, c, d] = await Promise.all([connect(), connect(), connect(), connect('/', { transports: ['polling'] })]);
  try {
    for (const [s, r] of [[a, 'r1'], [b, 'r1'], [c, 'r2'], [d, 'r1'], [d, 'r2'], [a, 'r2']])
      assert.strictEqual(await call(s, 'join', r), true);
    const rec = [a, b, c, d].map((s) => recorder(s, 'hi'));
    assert.strictEqual(await call(a, 'say', { to: ['r1'], event: 'hi', args: [1] }), 0);
    assert.strictEqual(await call(a, 'say', { to: ['r1', 'r2'], self: true, event: 'hi', args: [2] }), 0);
    assert.strictEqual(await call(b, 'say', { to: [], except: ['r2'], self: true, event: 'hi', args: [3] }), 0);
    assert.strictEqual(await call(c, 'say', { to: [b.id], event: 'hi', args: [4, 'only b'] }), 0);
    const got = await Promise.all(rec.map((r) => r.settle()));
    assert.deepStrictEqual(got[0], [[2]]); // a: not its own r1 message; r1+r2 once with self
    assert.deepStrictEqual(got[1], [[1], [2], [3], [4, 'only b']]);
    assert.deepStrictEqual(got[2], [[2]]); // c is in r2: excepted from 3
    assert.deepStrictEqual(got[3], [[1], [2]]); // d (polling) is in r1 and r2: once each
    assert.deepStrictEqual(await call(a, 'count', 'r1'), { room: 3, nsp: 4 });
  } finally { closeAll(a, b, c, d); }
});

test('leaving a room stops its broadcasts; an emptied room is gone', T, async () => {
  const [a, b] = await Promise.all([connect(), connect()]);
  try {
    await call(b, 'join', 'lobby');
    assert.deepStrictEqual((await call(a, 'count', 'lobby')).room, 1);
    const rec = recorder(b, 'news');
    await call(a, 'say', { to: ['lobby'], event: 'news', args: ['first'] });
    assert.strictEqual(await call(b, 'leave', 'lobby'), true);
    await call(a, 'say', { to: ['lobby'], event: 'news', args: ['second'] });
    assert.deepStrictEqual(await rec.settle(), [['first']]);
    assert.deepStrictEqual((await call(a, 'count', 'lobby')).room, 0);
    // every socket is in the room of its own id
    assert.deepStrictEqual((await call(a, 'count', a.id)).room, 1);
  } finally { closeAll(a, b); }
});

test('binary arguments are broadcast byte for byte', T, async () => {
  const [a, b] = await Promise.all([connect(), connect('/', { transports: ['polling'] })]);
  try {
    await call(b, 'join', 'bin');
    const bytes = crypto.randomBytes(3000);
    const p = next(b, 'blob');
    await call(a, 'say', { to: ['bin'], event: 'blob', args: [{ payload: bytes, n: 1 }, bytes.subarray(0, 5)] });
    const [obj, small] = await p;
    assert.ok(Buffer.from(obj.payload).equals(bytes));
    assert.strictEqual(obj.n, 1);
    assert.ok(Buffer.from(small).equals(bytes.subarray(0, 5)));
  } finally { closeAll(a, b); }
});

test('what a client would take for a protocol error is refused by the API, and nothing is sent', T, async () => {
  // socket.io's server throws on its reserved names; a placeholder naming no attachment is what
  // the client's parser refuses ("illegal attachments"): either would drop every recipient
  const [a, b] = await Promise.all([connect(), connect()]);
  try {
    const seen = [];
    for (const s of [a, b]) s.onAny((ev) => seen.push(ev));
    const disconnected = [];
    for (const s of [a, b]) s.on('disconnect', (r) => disconnected.push(r));
    assert.deepStrictEqual(await call(a, 'misuse'),
      ['TB_EINVAL', 'TB_EINVAL', 'TB_EINVAL', 'TB_EINVAL', 'TB_EINVAL', 'TB_EINVAL']);
    await call(a, 'say', { to: [], self: true, event: 'after', args: [1] });
    await new Promise((r) => setTimeout(r, 100));
    assert.deepStrictEqual(disconnected, []);
    assert.ok(a.connected && b.connected);
    assert.deepStrictEqual(seen.sort(), ['after', 'after']);
  } finally { closeAll(a, b); }
});

test('a server emit with an ack gets the answer, or a timeout when none comes', T, async () => {
  const a = await connect();
  try {
    a.once('question', (q, cb) => { assert.strictEqual(q, 'what is 6 x 7?'); cb(42, 'sure'); });
    let p = next(a, 'asked');
    a.emit('ask', 2000);
    assert.deepStrictEqual((await p)[0], { status: 'ok', args: [42, 'sure'] });
    a.once('question', () => {}); // never answers
    p = next(a, 'asked');
    const t0 = Date.now();
    a.emit('ask', 300);
    assert.deepStrictEqual((await p)[0], { status: 'TB_ETIMEDOUT' });
    assert.ok(Date.now() - t0 >= 250, 'not before the timeout');
  } finally { a.close(); }
});

test('disconnect reasons reach the client and the server handler', T, async () => {
  const watcher = await connect();
  try {
    await call(watcher, 'join', 'watchers');
    const reasons = recorder(watcher, 'left');
    const a = await connect();
    const ids = [a.id];
    const aDisc = next(a, 'disconnect');
    a.emit('kick', false);
    assert.strictEqual((await aDisc)[0], 'io server disconnect');
    const b = await connect();
    ids.push(b.id);
    const bDisc = next(b, 'disconnect');
    b.emit('kick', true);
    assert.strictEqual((await bDisc)[0], 'io server disconnect');
    const c = await connect();
    ids.push(c.id);
    c.disconnect();
    const d = await connect();
    ids.push(d.id);
    d.io.engine.close();
    await new Promise((r) => setTimeout(r, 200));
    const got = (await reasons.settle()).map(([x]) => x);
    assert.deepStrictEqual(got.map((x) => x.id), ids);
    assert.deepStrictEqual(got.map((x) => x.reason),
      ['server namespace disconnect', 'server namespace disconnect', 'client namespace disconnect', 'transport close']);
    assert.deepStrictEqual(got.map((x) => x.rooms), [0, 0, 0, 0]); // on_disconnect: in no room
    closeAll(a, b, c, d);
  } finally { watcher.close(); }
});

test('on_disconnecting sees the rooms a socket is leaving, and can tell them', T, async () => {
  const [stay, go] = await Promise.all([connect(), connect()]);
  try {
    await call(stay, 'join', 'lobby');
    for (const r of ['lobby', 'table-1']) await call(go, 'join', r);
    const gone = next(stay, 'gone-from');
    const id = go.id;
    go.disconnect();
    const [info] = await gone;
    assert.strictEqual(info.id, id);
    assert.strictEqual(info.room, 'lobby');
    assert.strictEqual(info.reason, 'client namespace disconnect');
    assert.deepStrictEqual([...info.rooms].sort(), [id, 'lobby', 'table-1'].sort());
  } finally { closeAll(stay, go); }
});

test('middleware refuses with CONNECT_ERROR and its data', T, async () => {
  await assert.rejects(connect('/', { auth: { banned: true } }), (e) => {
    assert.strictEqual(e.message, 'banned');
    assert.deepStrictEqual(e.data, { until: 'forever' });
    return true;
  });
  const ok = await connect('/', { auth: { banned: false } });
  ok.close();
});

test('JWT on the handshake: verified claims, or "Authentication error" with the reason', T, async () => {
  const good = jwt({ sub: 'user-7', iss: 'tablium-test', exp: now() + 60 });
  for (const transports of [['websocket'], ['polling']]) {
    const s = await connect('/games', { auth: { token: good }, transports });
    const me = await call(s, 'whoami');
    assert.strictEqual(me.sub, 'user-7');
    assert.strictEqual(me.nsp, '/games');
    assert.strictEqual(me.transport, transports[0]);
    s.close();
  }
  const bearer = await connect('/games', { auth: { token: 'Bearer ' + good } });
  bearer.close();
  const cases = [
    [{}, 'missing_token'],
    [{ token: 'not.a.jwt' }, null],
    [{ token: jwt({ sub: 'u', iss: 'tablium-test', exp: now() + 60 }, 'other-secret') }, null],
    [{ token: jwt({ sub: 'u', iss: 'tablium-test', exp: now() - 3600 }) }, null],
    [{ token: jwt({ sub: 'u', iss: 'someone-else', exp: now() + 60 }) }, null],
    [{ token: 42 }, 'missing_token'],
  ];
  const reasons = new Set();
  for (const [auth, reason] of cases) {
    await assert.rejects(connect('/games', { auth }), (e) => {
      assert.strictEqual(e.message, 'Authentication error');
      assert.strictEqual(typeof e.data.reason, 'string');
      if (reason) assert.strictEqual(e.data.reason, reason);
      reasons.add(e.data.reason);
      return true;
    });
  }
  assert.ok(reasons.size >= 4, `distinct reasons: ${[...reasons]}`);
  // the root namespace does not need a token, and the refusal did not spoil the server
  const root = await connect('/');
  assert.strictEqual((await call(root, 'whoami')).sub, null);
  root.close();
});

test('a socket whose handshake token expires acts for nobody: its next event is refused, then it is disconnected', { timeout: 15000 }, async () => {
  const exp = now() + 2;
  const s = await connect('/games', { auth: { token: jwt({ sub: 'user-9', iss: 'tablium-test', exp }) } });
  const errors = recorder(s, 'error');
  assert.strictEqual((await call(s, 'whoami')).sub, 'user-9');
  // past exp + the verifier's leeway (1 s here): it went on acting as user-9 before
  await new Promise((r) => setTimeout(r, Math.max(0, (exp + 1 - now()) * 1000) + 1200));
  const gone = next(s, 'disconnect', 5000);
  const res = await call(s, 'whoami');
  assert.strictEqual(res.error && res.error.code, 'UNAUTHENTICATED', JSON.stringify(res));
  assert.strictEqual(res.error.event, 'whoami');
  const [reason] = await gone;
  assert.strictEqual(reason, 'io server disconnect');
  assert.strictEqual(errors.got.length, 1, 'the error event reached the sender');
  // a fresh token connects again
  const again = await connect('/games', { auth: { token: jwt({ sub: 'user-9', iss: 'tablium-test', exp: now() + 60 }) } });
  assert.strictEqual((await call(again, 'whoami')).sub, 'user-9');
  closeAll(s, again);
});

test('namespace patterns: matching names connect, others are invalid', T, async () => {
  const s = io(URL + '/dyn-42', { forceNew: true, transports: ['websocket'], reconnection: false });
  try {
    const [name] = await next(s, 'hello');
    assert.strictEqual(name, '/dyn-42');
    const me = await call(s, 'whoami');
    assert.strictEqual(me.nsp, '/dyn-42');
    assert.strictEqual(me.connects, 1); // per-socket data set on connect
  } finally { s.close(); }
  await assert.rejects(connect('/other'), (e) => e.message === 'Invalid namespace');
});

test('a post from another thread broadcasts on the loop', T, async () => {
  const [a, b] = await Promise.all([connect(), connect('/', { transports: ['polling'] })]);
  try {
    const pa = next(a, 'posted');
    const pb = next(b, 'posted');
    a.emit('post', 'from a thread');
    assert.deepStrictEqual(await pa, ['from a thread']);
    assert.deepStrictEqual(await pb, ['from a thread']);
  } finally { closeAll(a, b); }
});

// A raw WebSocket client that stops reading: the server's queue for it grows past max_buffered
// (256 KB in rooms_server.c).
async function stalledClient(floodArgs) {
  const u = URL.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket';
  const ws = new WebSocket(u);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const connected = new Promise((resolve) => ws.on('message', (m) => { if (String(m).startsWith('40')) resolve(); }));
  ws.send('40');
  await connected;
  ws._socket.pause();
  ws.send('42' + JSON.stringify(['flood', ...floodArgs]));
  return ws;
}

test('a client that stops reading: volatile packets are dropped, others disconnect it', T, async () => {
  const observer = await connect();
  try {
    const before = await call(observer, 'stats');
    const vol = await stalledClient([300, 65536, true]);
    let st;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      st = await call(observer, 'stats');
      if (st.dropped_volatile > before.dropped_volatile) break;
    }
    assert.ok(st.dropped_volatile > before.dropped_volatile, 'volatile packets were dropped');
    assert.strictEqual(st.slow_disconnects, before.slow_disconnects, 'and nobody was disconnected');
    vol.terminate();

    const slow = await stalledClient([300, 65536, false]);
    const closed = new Promise((resolve) => slow.once('close', resolve));
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      st = await call(observer, 'stats');
      if (st.slow_disconnects > before.slow_disconnects) break;
    }
    assert.strictEqual(st.slow_disconnects, before.slow_disconnects + 1, 'the slow client was disconnected');
    slow._socket.resume();
    await closed;
    // the server is still fine
    assert.ok((await call(observer, 'stats')).sessions >= 1);
  } finally { observer.close(); }
});

test('memory per session is reported and bounded', T, async () => {
  const many = await Promise.all(Array.from({ length: 50 }, () => connect()));
  try {
    const st = await call(many[0], 'stats');
    assert.ok(st.sessions >= 50);
    if (process.env.TB_RT_SANITIZED !== '1') { // ASan's allocator is not mallinfo2's
      assert.ok(st.bytes_per_session > 0, 'reported');
      assert.ok(st.bytes_per_session < 64 * 1024, `bounded: ${st.bytes_per_session} B`);
    }
    console.log(`realtime-memory: ${st.bytes_per_session} bytes per session with ${st.sessions} sessions`);
  } finally { closeAll(...many); }
});

// Wait until the earlier tests' sessions are gone (a test that counts sessions, or spreads new
// ones over the loops by how busy each is, starts from none: closing is asynchronous)
async function quiet() {
  for (let i = 0; i < 100; i++) {
    const h = await (await fetch(`${URL}/health`)).json();
    if (h.sessions === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the earlier sessions did not end');
}

test('1,000 clients connecting at once all get in, and all leave without a trace', { timeout: 60000 }, async () => {
  await quiet();
  const observer = await connect();
  let all = [];
  try {
    const before = await call(observer, 'stats');
    const u = URL.replace('http', 'ws') + '/socket.io/?EIO=4&transport=websocket';
    const open = () => new Promise((resolve, reject) => {
      const ws = new WebSocket(u, { perMessageDeflate: false });
      ws.on('message', (m) => {
        const s = String(m);
        if (s[0] === '0') ws.send('40');
        else if (s.startsWith('40')) resolve(ws);
        else if (s === '2') ws.send('3');
      });
      ws.once('error', reject);
    });
    const t0 = Date.now();
    all = await Promise.all(Array.from({ length: 1000 }, open)); // no waves: all at once
    const ms = Date.now() - t0;
    const during = await call(observer, 'stats');
    assert.ok(during.sockets >= before.sockets + 1000, `1000 sockets connected (${during.sockets})`);
    console.log(`realtime-burst-connect: 1000 clients connected at once in ${ms} ms`);
    for (const ws of all) ws.terminate();
    let after;
    for (let i = 0; i < 100; i++) {
      after = await call(observer, 'stats');
      if (after.sessions === before.sessions) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.strictEqual(after.sessions, before.sessions, 'every session closed');
    assert.strictEqual(after.sockets, before.sockets, 'every socket gone');
  } finally {
    for (const ws of all) ws.terminate(); // a failed assertion leaves none open for later tests
    observer.close();
  }
});

// Several event loops (TB_RT_LOOPS > 1, the realtime_*_loops tests): new sessions are spread over
// the loops (a sid's first character names its loop), the requests of a polling session reach
// its loop on every new connection, and rooms, broadcasts and counts span the loops.
const LOOPS = Number(process.env.TB_RT_LOOPS || 1);
test('several loops: sessions spread over the loops, and rooms and broadcasts span them',
  { ...T, skip: LOOPS < 2 ? 'TB_RT_LOOPS is not > 1' : false }, async () => {
    await quiet();
    const ss = await Promise.all([0, 1, 2, 3, 4, 5].map((i) =>
      connect('/', i % 2 ? { transports: ['polling'] } : {})));
    try {
      const loops = new Set(ss.map((s) => s.io.engine.id[0]));
      assert.strictEqual(loops.size, Math.min(LOOPS, ss.length), [...loops].join(''));
      for (const s of ss) assert.strictEqual(await call(s, 'join', 'all-loops'), true);
      assert.deepStrictEqual(await call(ss[0], 'count', 'all-loops'), { room: 6, nsp: 6 });
      const rec = ss.map((s) => recorder(s, 'everywhere'));
      // from every loop to the room, the sender excepted
      for (const [i, s] of ss.entries())
        assert.strictEqual(await call(s, 'say', { to: ['all-loops'], event: 'everywhere', args: [i] }), 0);
      // a polling session keeps its loop across many requests (each on a new connection)
      for (let k = 0; k < 20; k++) assert.strictEqual(await call(ss[1], 'join', `p${k}`), true);
      const got = await Promise.all(rec.map((r) => r.settle()));
      for (const [i, g] of got.entries())
        assert.deepStrictEqual(g.map((a) => a[0]).sort(), [0, 1, 2, 3, 4, 5].filter((j) => j !== i), `socket ${i}`);
      ss[0].close();
      await new Promise((r) => setTimeout(r, 100));
      assert.deepStrictEqual(await call(ss[1], 'count', 'all-loops'), { room: 5, nsp: 5 });
    } finally { closeAll(...ss); }
  });

test('several loops: a kept-alive connection carrying two sessions\' polls reaches each one\'s loop',
  { ...T, skip: LOOPS < 2 ? 'TB_RT_LOOPS is not > 1' : false }, async () => {
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }); // as a browser reuses one
    const req = (method, query, body) => new Promise((resolve, reject) => {
      const r = http.request(`${URL}/socket.io/?EIO=4&transport=polling${query}`, { method, agent }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => { data += c; });
        res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, data }));
      });
      r.on('error', reject);
      r.end(body);
    });
    try {
      await quiet();
      const sids = [];
      for (let i = 0; i < 4; i++) sids.push(JSON.parse((await req('GET', '')).data.slice(1)).sid);
      assert.ok(new Set(sids.map((s) => s[0])).size >= 2, sids.join(' '));
      for (const sid of sids) {
        const post = await req('POST', `&sid=${sid}`, '40');
        assert.deepStrictEqual([post.status, post.data, post.connection], [200, 'ok', 'close'], sid);
      }
      for (const sid of sids) {
        const get = await req('GET', `&sid=${sid}`);
        assert.strictEqual(get.status, 200, `${sid}: ${get.data}`);
        assert.match(get.data, /^40\{"sid":"/, sid);
      }
    } finally { agent.destroy(); }
  });
