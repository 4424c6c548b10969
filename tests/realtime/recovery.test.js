// Connection state recovery (Socket.IO 4.6 semantics) kept in Redis: C nodes (rooms_server.c
// with RECOVERY_MS) and the official socket.io-client. A client gets back its id, its rooms and
// the packets it missed, with `socket.recovered` true, also after the node that served it was
// killed (SIGKILL) and another process took its port; and is told it is not recovered (a new
// id, recovered false) when its session expired, it missed too much, the epoch changed (Redis
// lost its data), or it left on purpose.
// Env: TB_RT_ROOMS_SERVER (the rooms_server binary), TB_TEST_REDIS_URL; TB_RT_VALGRIND_LOG: run
// the nodes under valgrind memcheck, each logging to <that>.<pid> (tests/realtime/valgrind.sh).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { io } = require('socket.io-client');
const WebSocket = require('ws');
const { createClient } = require('redis');

const SERVER = process.env.TB_RT_ROOMS_SERVER;
const REDIS = process.env.TB_TEST_REDIS_URL;
const SECRET = '0123456789abcdef0123456789abcdef-recovery';
const KEY = `tb-test-recovery-${crypto.randomBytes(4).toString('hex')}`;
const MAX_MS = 3000; // sessions live 3 s after a disconnect
const MAX_MISSED = 20;
const T = { timeout: 30000 };
const nodes = {};
const opened = [];
let redis;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}
async function waitPort(port, proc, ms = 10000) {
  const t0 = Date.now();
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`port ${port} not open within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
// Starts (or restarts, on the same port) the C node `name`.
async function startNode(name, port) {
  port = port || await freePort();
  const vg = process.env.TB_RT_VALGRIND_LOG;
  const cmd = vg ? 'valgrind' : SERVER;
  const args = vg ? ['--quiet', '--leak-check=full', '--show-leak-kinds=definite,indirect,possible',
    '--errors-for-leak-kinds=definite,indirect,possible', '--error-exitcode=9', `--log-file=${vg}.%p`, SERVER] : [];
  const proc = spawn(cmd, args, {
    env: {
      ...process.env, PORT: String(port), REDIS_URL: REDIS, NODE_NAME: name, TB_TEST_JWT_SECRET: SECRET,
      RECOVERY_MS: String(MAX_MS), RECOVERY_KEY: KEY, RECOVERY_MAX_MISSED: String(MAX_MISSED),
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitPort(port, proc, vg ? 30000 : 10000);
  nodes[name] = { proc, port, url: `http://127.0.0.1:${port}` };
  return nodes[name];
}
function stopped(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
  });
}
async function kill9(name) {
  const { proc } = nodes[name];
  proc.kill('SIGKILL');
  await stopped(proc);
  delete nodes[name];
}
function connect(node, opts = {}) {
  const s = io(nodes[node].url, {
    forceNew: true, transports: ['websocket'], reconnectionDelay: 100, reconnectionDelayMax: 200,
    randomizationFactor: 0, ...opts,
  });
  opened.push(s);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connect to ${node} timed out`)), 5000);
    s.once('connect', () => { clearTimeout(timer); resolve(s); });
    s.once('connect_error', (e) => { clearTimeout(timer); reject(e); });
  });
}
const call = (s, ev, ...args) => s.timeout(8000).emitWithAck(ev, ...args);
function recorder(s, ev) {
  const got = [];
  s.on(ev, (...a) => got.push(a));
  return got;
}
async function until(pred, what, ms = 5000) {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const once = (s, ev) => new Promise((resolve) => s.once(ev, (...a) => resolve(a)));
const OFFSET = /^[a-z0-9]+:\d+$/;
// the offset is the last argument of a recoverable packet (socket.io's listeners see it too)
const payload = (args) => {
  assert.match(args[args.length - 1], OFFSET, 'a recoverable packet ends with its offset');
  return args.slice(0, -1);
};

test.before(async () => {
  assert.ok(SERVER && REDIS, 'TB_RT_ROOMS_SERVER and TB_TEST_REDIS_URL are set');
  redis = createClient({ url: REDIS });
  await redis.connect();
  await Promise.all([startNode('a'), startNode('b')]);
});

test.after(async () => {
  opened.forEach((s) => s.close());
  await Promise.all(Object.values(nodes).map(({ proc }) => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
    setTimeout(() => { proc.kill('SIGKILL'); }, 5000).unref();
  })));
  for (const [name, { proc }] of Object.entries(nodes))
    assert.strictEqual(proc.exitCode, 0, `${name} stopped cleanly (exit ${proc.exitCode}, signal ${proc.signalCode})`);
  if (redis) {
    const keys = await redis.keys(`${KEY}:*`);
    if (keys.length) await redis.del(keys);
    await redis.quit();
  }
});

test('after its node is killed, a client gets back its id, rooms and missed packets on the node that takes over (both transports)', T, async () => {
  const ws = await connect('a');
  const poll = await connect('a', { transports: ['polling'] });
  const sender = await connect('b', { reconnection: false });
  for (const c of [ws, poll]) await call(c, 'join', 'g1');
  const seen = [ws, poll].map((c) => ({
    tick: recorder(c, 'tick'), news: recorder(c, 'news'), x: recorder(c, 'x'), direct: recorder(c, 'direct'),
  }));
  await call(sender, 'say', { to: ['g1'], event: 'tick', args: [1] });
  await call(sender, 'say', { to: ['g1'], event: 'tick', args: [2, { b: true }] });
  await until(() => seen.every((s) => s.tick.length === 2), 'ticks 1-2 before the kill');
  const ids = [ws.id, poll.id];
  assert.ok(ws.id && poll.id);

  const gone = [once(ws, 'disconnect'), once(poll, 'disconnect')];
  const port = nodes.a.port;
  await kill9('a');
  await Promise.all(gone);
  // while the clients are away: to their room, to everyone, to everyone but their room, and to
  // one of them by id (its own room)
  await call(sender, 'say', { to: ['g1'], event: 'tick', args: [3] });
  await call(sender, 'say', { to: ['g1'], event: 'tick', args: [4, 'four'] });
  await call(sender, 'say', { event: 'news', args: ['to all'] });
  await call(sender, 'say', { except: ['g1'], event: 'x', args: ['not for g1'] });
  await call(sender, 'say', { to: [ids[0]], event: 'direct', args: ['for ws'] });

  const back = [once(ws, 'connect'), once(poll, 'connect')];
  await startNode('a2', port);
  await Promise.all(back);
  assert.strictEqual(ws.recovered, true, 'websocket client recovered');
  assert.strictEqual(poll.recovered, true, 'polling client recovered');
  assert.deepStrictEqual([ws.id, poll.id], ids, 'same socket ids');
  await until(() => seen.every((s) => s.tick.length === 4 && s.news.length === 1), 'missed packets replayed');
  await until(() => seen[0].direct.length === 1, 'the missed direct emit');
  for (const s of seen) {
    assert.deepStrictEqual(s.tick.map(payload), [[1], [2, { b: true }], [3], [4, 'four']], 'in order, once each');
    assert.deepStrictEqual(s.news.map(payload), [['to all']]);
    assert.deepStrictEqual(s.x, [], 'a broadcast excepting its room is not replayed');
  }
  assert.deepStrictEqual(seen[0].direct.map(payload), [['for ws']]);
  assert.deepStrictEqual(seen[1].direct, [], 'the other socket does not get it');
  const who = await call(ws, 'whoami');
  assert.strictEqual(who.node, 'a2');
  assert.strictEqual(who.id, ids[0]);
  assert.strictEqual(who.recovered, true);
  // still in the room, on the new node
  await call(sender, 'say', { to: ['g1'], event: 'tick', args: [5] });
  await until(() => seen.every((s) => s.tick.length === 5), 'a room broadcast after the recovery');
  assert.deepStrictEqual(payload(seen[0].tick[4]), [5]);
  const counts = await call(ws, 'count', 'g1');
  assert.strictEqual(counts.room, 2, 'both recovered sockets are in g1 on the new node');
  ws.close();
  poll.close();
  sender.close();
});

test('a transport close on a live node recovers too', T, async () => {
  const c = await connect('b', { reconnectionDelay: 300, reconnectionDelayMax: 300 });
  const other = await connect('b', { reconnection: false });
  await call(c, 'join', 'g2');
  const ticks = recorder(c, 'tick');
  const id = c.id;
  const gone = once(c, 'disconnect');
  c.io.engine.close(); // the link drops (the client says "forced close", the server "transport close")
  const [reason] = await gone;
  assert.strictEqual(reason, 'forced close');
  for (let i = 0; i < 5; i++) await call(other, 'say', { to: ['g2'], event: 'tick', args: [i] });
  await once(c, 'connect');
  assert.strictEqual(c.recovered, true);
  assert.strictEqual(c.id, id);
  await until(() => ticks.length === 5, 'five missed ticks');
  assert.deepStrictEqual(ticks.map(payload).map((a) => a[0]), [0, 1, 2, 3, 4]);
  c.close();
  other.close();
});

// With recovery, a stored packet goes out once Redis has it, a round trip later; what the same
// handler sends after it (its ack, a server emit asking for an ack) waits for it, so the client
// sees them in the order they were sent, as with socket.io (whose store is in memory).
test('a packet sent after a stored one (an ack, an emit with an ack) reaches the socket after it', T, async () => {
  const c = await connect('b');
  await call(c, 'join', 'ord');
  const seen = [];
  c.on('news', (n) => seen.push(`news ${n}`));
  c.on('question', (q, answer) => { seen.push('question'); answer(42); });
  for (let i = 0; i < 20; i++) {
    await c.timeout(8000).emitWithAck('say', { to: ['ord'], self: true, event: 'news', args: [i] });
    seen.push(`ack ${i}`);
  }
  const want = [];
  for (let i = 0; i < 20; i++) want.push(`news ${i}`, `ack ${i}`);
  assert.deepStrictEqual(seen, want);
  seen.length = 0;
  // a stored emit to the socket, then a server emit with an ack, from one handler
  const asked = once(c, 'asked');
  c.emit('ask', 2000, 'news');
  const [res] = await asked;
  assert.strictEqual(res.status, 'ok');
  assert.deepStrictEqual(seen.slice(0, 2), ['news first', 'question']);
  c.close();
});

// A CONNECT naming a session whose socket is still connected (or just left on purpose) gets a
// new session: socket.io keeps a session only once its socket is gone, and recovering a live one
// would give two sockets one id. With several loops the connections land on different loops, each
// with its own Redis connection, so this is decided in the process, not by Redis alone.
test('a session still connected, or ended on purpose, is not taken by another connection naming it', T, async () => {
  const victim = await connect('b');
  const other = await connect('b', { reconnection: false });
  await call(victim, 'join', 'g5');
  const ticks = recorder(victim, 'tick');
  await call(other, 'say', { to: ['g5'], event: 'tick', args: [1] });
  await until(() => ticks.length === 1, 'a tick');
  const auth = JSON.stringify({ pid: victim._pid, offset: victim._lastOffset }); // what it would send back
  assert.ok(victim._pid && victim._lastOffset, 'the client holds a pid and an offset');
  const claim = () => new Promise((resolve, reject) => {
    const ws = new WebSocket(`${nodes.b.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no CONNECT answer')); }, 5000);
    ws.on('message', (m) => {
      const t = String(m);
      if (t[0] === '0') ws.send(`40${auth}`);
      else if (t.startsWith('40')) { clearTimeout(timer); ws.close(); resolve(JSON.parse(t.slice(2)).sid); }
    });
    ws.once('error', reject);
  });
  // several at once: with several loops, some land on a loop other than the victim's
  const sids = await Promise.all(Array.from({ length: 4 }, claim));
  for (const sid of sids) assert.notStrictEqual(sid, victim.id, 'a live session is not recovered');
  assert.strictEqual((await call(other, 'count', 'g5')).room, 1, 'the room holds the victim alone');
  // ended on purpose: its next CONNECT, wherever it lands, is a new session
  victim.disconnect();
  const again = await Promise.all(Array.from({ length: 4 }, claim));
  for (const sid of again) assert.notStrictEqual(sid, victim.id, 'a session ended on purpose is not recovered');
  other.close();
});

// Several loops (realtime_recovery_loops): packets stored from two loops in turn, each sent after
// the previous one's ack, are replayed in that order. Each loop used to have its own Redis
// connection: a loop whose connection was busy (here with a flood to another room) stored its
// packet after the other loop's later one, and a recovered client got them out of order
// (contract_realtime's spectator once saw moves 3, 3, 4 for 3, 4, 3). They share one now.
const LOOPS = Number(process.env.TB_RT_LOOPS || 1);
test('several loops: packets sent in turn from two loops are replayed in the order they were sent',
  { ...T, skip: LOOPS < 2 ? 'TB_RT_LOOPS is not > 1' : false }, async () => {
    const pool = [];
    const byLoop = new Map(); // a sid's first character names its loop
    for (let i = 0; i < 16 && (byLoop.size < 2 || pool.length < 3); i++) {
      const s = await connect('b', { reconnection: false });
      pool.push(s);
      if (!byLoop.has(s.io.engine.id[0])) byLoop.set(s.io.engine.id[0], s);
    }
    assert.strictEqual(byLoop.size, 2, 'senders on two loops');
    const [s0, s1] = [...byLoop.values()];
    const flooder = pool.find((s) => s !== s0 && s !== s1) || s0;
    const c = await connect('b', { reconnectionDelay: 1500, reconnectionDelayMax: 1500 });
    await call(c, 'join', 'in-turn');
    const got = recorder(c, 'turn');
    const gone = once(c, 'disconnect');
    const back = once(c, 'connect');
    c.io.engine.close();
    await gone;
    // keeps the loops' stores busy while the turns are sent
    let flooding = true;
    const flood = (async () => {
      while (flooding) {
        await Promise.all(Array.from({ length: 64 }, () =>
          call(flooder, 'say', { to: ['no-one'], event: 'noise', args: [0] })));
      }
    })();
    const N = 16; // within max_missed (20)
    for (let k = 0; k < N; k++)
      assert.strictEqual(await call(k % 2 ? s1 : s0, 'say', { to: ['in-turn'], event: 'turn', args: [k] }), 0);
    flooding = false;
    await flood;
    await back;
    assert.strictEqual(c.recovered, true, 'recovered');
    await until(() => got.length >= N, () => `${N} turns, got ${got.length}`);
    assert.deepStrictEqual(got.map((a) => payload(a)[0]), Array.from({ length: N }, (_, k) => k),
      'the turns in the order they were sent');
    c.close();
    pool.forEach((s) => s.close());
  });

test('not recovered: expired session, too many missed packets, a new epoch, a disconnect on purpose', T, async () => {
  const other = await connect('b', { reconnection: false });
  // expired: back after more than max_disconnection
  const late = await connect('b', { reconnectionDelay: MAX_MS + 1500, reconnectionDelayMax: MAX_MS + 1500 });
  // too many: more than max_missed packets to its room meanwhile
  const busy = await connect('b', { reconnectionDelay: 500, reconnectionDelayMax: 500 });
  await call(busy, 'join', 'busy');
  // epoch: Redis loses the data set's epoch while the client is away
  const epoch = await connect('b', { reconnectionDelay: 800, reconnectionDelayMax: 800 });
  const ids = [late.id, busy.id, epoch.id];
  const gone = [late, busy].map((c) => once(c, 'disconnect'));
  late.io.engine.close();
  busy.io.engine.close();
  await Promise.all(gone);
  for (let i = 0; i < MAX_MISSED + 5; i++) await call(other, 'say', { to: ['busy'], event: 'tick', args: [i] });
  await once(busy, 'connect');
  assert.strictEqual(busy.recovered, false, 'too many missed packets: not recovered');
  assert.notStrictEqual(busy.id, ids[1], 'a new id');
  assert.strictEqual((await call(busy, 'count', 'busy')).room, 0, 'a new session is in no room');

  const epochKey = `${KEY}:rec:epoch`;
  assert.ok(await redis.get(epochKey), 'the epoch is in Redis');
  const egone = once(epoch, 'disconnect');
  epoch.io.engine.close();
  await egone;
  await redis.del(epochKey);
  await once(epoch, 'connect');
  assert.strictEqual(epoch.recovered, false, 'a new epoch: not recovered');
  assert.notStrictEqual(epoch.id, ids[2]);

  await once(late, 'connect');
  assert.strictEqual(late.recovered, false, 'expired: not recovered');
  assert.notStrictEqual(late.id, ids[0]);

  // a disconnect on purpose ends the session: connecting again is a new one
  const quits = await connect('b');
  const qid = quits.id;
  quits.disconnect();
  quits.connect();
  await once(quits, 'connect');
  assert.strictEqual(quits.recovered, false, 'after disconnect(): not recovered');
  assert.notStrictEqual(quits.id, qid);

  // and what recovers afterwards still works with the new epoch
  const again = await connect('b', { reconnectionDelay: 200, reconnectionDelayMax: 200 });
  await call(again, 'join', 'g3');
  const ticks = recorder(again, 'tick');
  await call(other, 'say', { to: ['g3'], event: 'tick', args: ['before'] });
  await until(() => ticks.length === 1, () => `a tick before (got ${JSON.stringify(ticks)})`);
  assert.deepStrictEqual(payload(ticks[0]), ['before'], 'stored in the new epoch: it has an offset');
  const agone = once(again, 'disconnect');
  again.io.engine.close();
  await agone;
  await call(other, 'say', { to: ['g3'], event: 'tick', args: ['during'] });
  await once(again, 'connect');
  assert.strictEqual(again.recovered, true, 'recovered in the new epoch');
  await until(() => ticks.length === 2, 'the missed tick');
  assert.deepStrictEqual(payload(ticks[1]), ['during']);
  const st = await call(again, 'stats');
  assert.ok(st.recovered >= 1 && st.not_recovered >= 3, `stats count recoveries: ${JSON.stringify(st)}`);
  for (const c of [other, late, busy, epoch, quits, again]) c.close();
});

function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(claims);
  const sig = crypto.createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

test('behind JWT (/games): the token is checked again, and a session comes back only to its subject', T, async () => {
  const token = (sub) => jwt({ sub, iss: 'tablium-test', exp: Math.floor(Date.now() / 1000) + 60 });
  const url = `${nodes.b.url}/games`;
  const open = (auth) => {
    const s = io(url, { forceNew: true, transports: ['websocket'], reconnectionDelay: 200, reconnectionDelayMax: 200, auth });
    opened.push(s);
    return once(s, 'connect').then(() => s);
  };
  const same = await open({ token: token('user-1') });
  const thief = await open({ token: token('user-2') });
  const ids = [same.id, thief.id];
  const gone = [same, thief].map((s) => once(s, 'disconnect'));
  same.io.engine.close();
  thief.io.engine.close();
  await Promise.all(gone);
  // the second client comes back with another user's token but (socket.io-client keeps it) its pid
  thief.auth = { token: token('user-3') };
  await Promise.all([once(same, 'connect'), once(thief, 'connect')]);
  assert.strictEqual(same.recovered, true, 'same subject: recovered');
  assert.strictEqual(same.id, ids[0]);
  assert.strictEqual(thief.recovered, false, 'another subject: a new session');
  assert.notStrictEqual(thief.id, ids[1]);
  assert.strictEqual((await call(thief, 'whoami')).sub, 'user-3');
  // an expired token is refused on the way back: the middlewares run on a recovery too
  const gone2 = once(same, 'disconnect');
  same.auth = { token: jwt({ sub: 'user-1', iss: 'tablium-test', exp: Math.floor(Date.now() / 1000) - 3600 }) };
  const refused = once(same, 'connect_error');
  same.io.engine.close();
  await gone2;
  same.connect();
  const [err] = await refused;
  assert.strictEqual(err.message, 'Authentication error');
  same.close();
  thief.close();
});

test('the session and room streams are in Redis with bounded lifetimes', T, async () => {
  const c = await connect('b');
  await call(c, 'join', 'g4');
  const other = await connect('b', { reconnection: false });
  const ticks = recorder(c, 'tick'); // before the say: the tick may arrive before its ack
  await call(other, 'say', { to: ['g4'], event: 'tick', args: [1] });
  await until(() => ticks.length === 1, 'a tick');
  const stream = `${KEY}:rec:r:/#g4`;
  assert.strictEqual(await redis.type(stream), 'stream');
  const ttl = await redis.pTTL(stream);
  assert.ok(ttl > 0 && ttl <= 2 * MAX_MS, `a room stream expires (${ttl} ms)`);
  const sessions = await redis.keys(`${KEY}:rec:s:*`);
  const mine = [];
  for (const k of sessions) if ((await redis.hGet(k, 'sid')) === c.id) mine.push(k);
  assert.strictEqual(mine.length, 1, 'one session hash for the socket');
  assert.deepStrictEqual(JSON.parse(await redis.hGet(mine[0], 'rooms')).sort(), [c.id, 'g4'].sort());
  const sttl = await redis.pTTL(mine[0]);
  assert.ok(sttl > 0 && sttl <= MAX_MS + 1000, `a connected session's hash is refreshed, not kept forever (${sttl} ms)`);
  c.disconnect();
  await until(async () => (await redis.exists(mine[0])) === 0, 'a disconnect on purpose deletes the session');
  other.close();
});
