// A mixed cluster on one Redis: two C nodes (rooms_server.c with the Redis adapter) and one
// Node.js socket.io node with the npm @socket.io/redis-adapter (node-node.js). Clients of every
// node share rooms; the Node node's cluster requests (fetchSockets, allRooms, socketsJoin,
// disconnectSockets, serverSideEmitWithAck, broadcasts with acks) are answered by the C nodes.
// Env: TB_RT_ROOMS_SERVER (the rooms_server binary), TB_TEST_REDIS_URL.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const crypto = require('node:crypto');
const { spawn } = require('node:child_process');
const { io } = require('socket.io-client');

const SERVER = process.env.TB_RT_ROOMS_SERVER;
const REDIS = process.env.TB_TEST_REDIS_URL;
const SECRET = '0123456789abcdef0123456789abcdef-cluster';
const T = { timeout: 15000 };
const nodes = {};

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
    if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`);
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`port ${port} not open within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
async function startNode(name, cmd, args, extraEnv = {}) {
  const port = await freePort();
  const proc = spawn(cmd, args, {
    env: { ...process.env, PORT: String(port), REDIS_URL: REDIS, NODE_NAME: name, TB_TEST_JWT_SECRET: SECRET, ...extraEnv },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await waitPort(port, proc);
  nodes[name] = { proc, url: `http://127.0.0.1:${port}` };
}
function connect(node, opts = {}) {
  const s = io(nodes[node].url, { forceNew: true, transports: ['websocket'], reconnection: false, ...opts });
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
// Waits until `pred()` holds (cluster delivery is asynchronous), failing after ms.
async function until(pred, what, ms = 3000) {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
const closeAll = (...ss) => ss.forEach((s) => s && s.close());

test.before(async () => {
  assert.ok(SERVER && REDIS, 'TB_RT_ROOMS_SERVER and TB_TEST_REDIS_URL are set');
  await Promise.all([
    startNode('c1', SERVER, []),
    startNode('c2', SERVER, []),
    startNode('c3', SERVER, [], { REDIS_TARGETED: '1' }), // targeted mode: per-room channels
    startNode('node', process.execPath, [path.join(__dirname, 'node-node.js')]),
  ]);
  // ready when the Node node's allRooms sees a room joined on each C node
  const [p, q, r, n] = await Promise.all([connect('c1'), connect('c2'), connect('c3'), connect('node')]);
  await call(p, 'join', 'ready-c1');
  await call(q, 'join', 'ready-c2');
  await call(r, 'join', 'ready-c3');
  await until(async () => {
    const rooms = await call(n, 'all-rooms');
    return rooms.includes('ready-c1') && rooms.includes('ready-c2') && rooms.includes('ready-c3');
  }, 'every node subscribed', 10000);
  closeAll(p, q, r, n);
});

test.after(async () => {
  await Promise.all(Object.values(nodes).map(({ proc }) => new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', resolve);
    proc.kill('SIGTERM');
    setTimeout(() => { proc.kill('SIGKILL'); }, 5000).unref();
  })));
  for (const [name, { proc }] of Object.entries(nodes))
    assert.strictEqual(proc.exitCode, 0, `${name} stopped cleanly (exit ${proc.exitCode}, signal ${proc.signalCode})`);
});

test('a room broadcast from any node reaches the members on every node', T, async () => {
  const [a, b, n, outsider] = await Promise.all([connect('c1'), connect('c2'), connect('node'), connect('c2')]);
  try {
    for (const s of [a, b, n]) await call(s, 'join', 'r');
    const got = [a, b, n, outsider].map((s) => recorder(s, 'hi'));
    await call(a, 'say', { to: ['r'], event: 'hi', args: ['from c1'] });
    await call(n, 'say', { to: ['r'], event: 'hi', args: ['from node', { nested: [1, 2.5, null, true] }] });
    await call(b, 'say', { to: ['r'], self: true, event: 'hi', args: ['from c2'] });
    await until(() => got[0].length === 2 && got[1].length === 3 && got[2].length === 2, 'deliveries');
    await new Promise((r) => setTimeout(r, 100)); // nothing more arrives
    const texts = got.map((g) => g.map((x) => x[0]).sort());
    assert.deepStrictEqual(texts[0], ['from c2', 'from node']);
    assert.deepStrictEqual(texts[1], ['from c1', 'from c2', 'from node']);
    assert.deepStrictEqual(texts[2], ['from c1', 'from c2']);
    assert.deepStrictEqual(texts[3], [], 'a socket outside the room gets nothing');
    assert.deepStrictEqual(got[0].find((x) => x[0] === 'from node')[1], { nested: [1, 2.5, null, true] });
  } finally { closeAll(a, b, n, outsider); }
});

test('binary arguments cross between C and Node.js nodes byte for byte', T, async () => {
  const [a, n] = await Promise.all([connect('c1'), connect('node')]);
  try {
    await call(a, 'join', 'bin');
    await call(n, 'join', 'bin');
    const bytes = crypto.randomBytes(2048);
    const atNode = new Promise((resolve) => n.once('blob', (...x) => resolve(x)));
    await call(a, 'say', { to: ['bin'], event: 'blob', args: [{ b: bytes }, 'tail'] });
    const [obj, tail] = await atNode;
    assert.ok(Buffer.from(obj.b).equals(bytes));
    assert.strictEqual(tail, 'tail');
    const atC = new Promise((resolve) => a.once('blob2', (...x) => resolve(x)));
    await call(n, 'say', { to: ['bin'], event: 'blob2', args: [bytes.subarray(0, 100), { deep: { b: bytes.subarray(100, 200) } }] });
    const [b1, b2] = await atC;
    assert.ok(Buffer.from(b1).equals(bytes.subarray(0, 100)));
    assert.ok(Buffer.from(b2.deep.b).equals(bytes.subarray(100, 200)));
  } finally { closeAll(a, n); }
});

test('except rooms and one-room channels hold across nodes', T, async () => {
  const [a, b, n] = await Promise.all([connect('c1'), connect('c2'), connect('node')]);
  try {
    await call(b, 'join', 'muted');
    await call(n, 'join', 'solo');
    const gotB = recorder(b, 'ev');
    const gotN = recorder(n, 'ev');
    await call(a, 'say', { to: [], except: ['muted'], event: 'ev', args: ['all but muted'] });
    await call(a, 'say', { to: ['solo'], event: 'ev', args: ['solo only'] });
    await until(() => gotN.length === 2, 'node got both');
    await new Promise((r) => setTimeout(r, 150));
    assert.deepStrictEqual(gotN.map((x) => x[0]), ['all but muted', 'solo only']);
    assert.deepStrictEqual(gotB, []);
  } finally { closeAll(a, b, n); }
});

test('fetchSockets and allRooms on the Node node include the C nodes\' sockets', T, async () => {
  const [a, b, n] = await Promise.all([connect('c1', { auth: { user: 'alice' } }), connect('c2'), connect('node')]);
  try {
    for (const s of [a, b, n]) await call(s, 'join', 'fetch-room');
    const socks = await call(n, 'fetch', 'fetch-room');
    assert.deepStrictEqual(socks.map((s) => s.id).sort(), [a.id, b.id, n.id].sort());
    const alice = socks.find((s) => s.id === a.id);
    assert.deepStrictEqual(alice.rooms.sort(), [a.id, 'fetch-room'].sort());
    assert.deepStrictEqual(alice.auth, { user: 'alice' });
    const rooms = await call(n, 'all-rooms');
    for (const r of ['fetch-room', a.id, b.id]) assert.ok(rooms.includes(r), `allRooms has ${r}`);
  } finally { closeAll(a, b, n); }
});

test('socketsJoin, socketsLeave and disconnectSockets from Node.js act on C sockets', T, async () => {
  const [a, b, n] = await Promise.all([connect('c1'), connect('c2'), connect('node')]);
  try {
    const got = recorder(a, 'ev');
    const members = async () => (await call(n, 'fetch', 'joined-remotely')).map((x) => x.id);
    // socketsJoin publishes without waiting: fetchSockets (published after it) sees its effect
    await call(n, 'remote-join', a.id, 'joined-remotely');
    await until(async () => (await members()).includes(a.id), 'a joined remotely');
    await call(b, 'say', { to: ['joined-remotely'], event: 'ev', args: ['reached'] });
    await until(() => got.length === 1, 'delivery after a remote join');
    await call(n, 'remote-leave', a.id, 'joined-remotely');
    await until(async () => !(await members()).includes(a.id), 'a left remotely');
    await call(b, 'say', { to: ['joined-remotely'], event: 'ev', args: ['not reached'] });
    await new Promise((r) => setTimeout(r, 150));
    assert.deepStrictEqual(got.map((x) => x[0]), ['reached']);
    const gone = new Promise((resolve) => a.once('disconnect', resolve));
    await call(n, 'remote-disconnect', a.id);
    assert.strictEqual(await gone, 'io server disconnect');
  } finally { closeAll(a, b, n); }
});

test('server-side emits both ways, with acknowledgements from the C nodes', T, async () => {
  const [a, b, n] = await Promise.all([connect('c1'), connect('c2'), connect('node')]);
  try {
    const answers = await call(n, 'server-emit-ack');
    assert.ok(Array.isArray(answers), JSON.stringify(answers));
    assert.deepStrictEqual(answers.map((x) => x.node).sort(), ['c1', 'c2', 'c3']);
    for (const x of answers) assert.deepStrictEqual(x.got, ['hello', 1]);
    assert.strictEqual(await call(a, 'server-emit', 'from-c1', { n: 2 }), 0);
    await until(async () => JSON.stringify(await call(n, 'last-server-emit')) === JSON.stringify(['from-c1', { n: 2 }]), 'node got it');
    await until(async () => JSON.stringify(await call(b, 'last-server-emit')) === JSON.stringify(['from-c1', { n: 2 }]), 'c2 got it');
  } finally { closeAll(a, b, n); }
});

test('a broadcast with acks from Node.js collects the C clients\' answers', T, async () => {
  const [a, b, n] = await Promise.all([connect('c1'), connect('c2'), connect('node')]);
  try {
    for (const [s, name] of [[a, 'c1'], [b, 'c2'], [n, 'node']]) {
      await call(s, 'join', 'quiz');
      s.on('question', (q, cb) => { assert.strictEqual(q, 'ready?'); cb(`yes-${name}`); });
    }
    assert.deepStrictEqual(await call(n, 'broadcast-ack', 'quiz'), ['yes-c1', 'yes-c2', 'yes-node']);
  } finally { closeAll(a, b, n); }
});

test('targeted mode: a node receives only the rooms it holds, and delivers each message once', T, async () => {
  const [a, b, t, t2, n] = await Promise.all([connect('c1'), connect('c2'), connect('c3'), connect('c3'), connect('node')]);
  try {
    await call(t, 'join', 'held');
    await call(n, 'join', 'held');
    await call(n, 'join', 'elsewhere');
    // the targeted node subscribes as rooms appear: wait until a message to 'held' arrives
    const gotT = recorder(t, 'ev');
    const gotN = recorder(n, 'ev');
    let probes = 0;
    await until(async () => {
      await call(a, 'say', { to: ['held'], event: 'ev', args: ['probe'] });
      probes++;
      await new Promise((r) => setTimeout(r, 30));
      return gotT.length > 0;
    }, 'c3 subscribed to held');
    await until(() => gotN.length === probes, 'node got the probes');
    gotT.length = 0;
    gotN.length = 0;
    const before = { c2: await call(b, 'stats'), c3: await call(t, 'stats') };
    const blob = 'x'.repeat(1000);
    for (let i = 0; i < 50; i++) await call(a, 'say', { to: ['elsewhere'], event: 'ev', args: ['far', blob] });
    await until(() => gotN.length === 50, 'node got the 50 messages to elsewhere');
    await new Promise((r) => setTimeout(r, 150));
    const after = { c2: await call(b, 'stats'), c3: await call(t, 'stats') };
    const pattern = after.c2.adapter_bytes_in - before.c2.adapter_bytes_in;
    const targeted = after.c3.adapter_bytes_in - before.c3.adapter_bytes_in;
    console.log(`realtime-targeted: 50 broadcasts of 1 KB to a room a node does not hold: ${targeted} bytes received by the targeted node vs ${pattern} by a pattern node`);
    assert.ok(pattern >= 50 * 1000, `the pattern node received them all (${pattern} B)`);
    assert.ok(targeted < 5000, `the targeted node received (almost) nothing (${targeted} B: requests only)`);
    assert.deepStrictEqual(gotT, [], 'and delivered nothing');
    // a broadcast to two rooms from the targeted node: the node's socket (in both) gets it once
    await call(t2, 'say', { to: ['held', 'elsewhere'], event: 'ev', args: ['two rooms'] });
    await until(() => gotN.filter((x) => x[0] === 'two rooms').length >= 1 && gotT.length >= 1, 'two-room delivery');
    await new Promise((r) => setTimeout(r, 150));
    assert.strictEqual(gotN.filter((x) => x[0] === 'two rooms').length, 1, 'once, not once per room');
    assert.strictEqual(gotT.filter((x) => x[0] === 'two rooms').length, 1);
    // a two-room broadcast from a pattern node (one message on the namespace channel) reaches it
    await call(a, 'say', { to: ['held', 'elsewhere'], event: 'ev', args: ['from c1'] });
    await until(() => gotT.some((x) => x[0] === 'from c1'), 'the targeted node hears the namespace channel');
    // leaving the room withdraws the subscription
    await call(t, 'leave', 'held');
    const b3 = (await call(t, 'stats')).adapter_bytes_in;
    for (let i = 0; i < 20; i++) await call(a, 'say', { to: ['held'], event: 'ev', args: ['gone', blob] });
    await until(() => gotN.filter((x) => x[0] === 'gone').length === 20, 'node got them');
    await new Promise((r) => setTimeout(r, 150));
    assert.ok((await call(t, 'stats')).adapter_bytes_in - b3 < 5000, 'unsubscribed once the room emptied');
  } finally { closeAll(a, b, t, t2, n); }
});
