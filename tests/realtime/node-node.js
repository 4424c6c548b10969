// A Node.js socket.io 4.8 node with the npm @socket.io/redis-adapter 8.3, answering the same
// events as rooms_server.c, for the mixed cluster of cluster.test.js (two C nodes and this one).
// Env: PORT, REDIS_URL, NODE_NAME.
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');
const { createClient } = require('redis');
const { createAdapter } = require('@socket.io/redis-adapter');

const name = process.env.NODE_NAME || 'node';
async function main() {
  const pub = createClient({ url: process.env.REDIS_URL });
  const sub = pub.duplicate();
  pub.on('error', () => {});
  sub.on('error', () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter: createAdapter(pub, sub) });
  let lastServerEmit = null;
  io.on('ping-cluster', (...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    lastServerEmit = args;
    if (cb) cb({ node: name, got: args });
  });
  io.on('connection', (socket) => {
    const ack = (cb, v) => typeof cb === 'function' && cb(v);
    socket.on('join', (room, cb) => { socket.join(room); ack(cb, true); });
    socket.on('leave', (room, cb) => { socket.leave(room); ack(cb, true); });
    socket.on('whoami', (cb) => ack(cb, { id: socket.id, node: name }));
    socket.on('say', (o, cb) => {
      let op = o.self ? io.to(o.to || []) : socket.to(o.to || []);
      if (o.except && o.except.length) op = op.except(o.except);
      if (o.volatile) op = op.volatile;
      op.emit(o.event, ...(o.args || []));
      ack(cb, 0);
    });
    socket.on('fetch', async (room, cb) => {
      const socks = await (room ? io.in(room) : io).fetchSockets();
      ack(cb, socks.map((s) => ({ id: s.id, rooms: [...s.rooms], auth: s.handshake.auth })).sort((a, b) => a.id < b.id ? -1 : 1));
    });
    socket.on('all-rooms', async (cb) => ack(cb, [...await io.of('/').adapter.allRooms()].sort()));
    socket.on('remote-join', async (sid, room, cb) => { await io.in(sid).socketsJoin(room); ack(cb, true); });
    socket.on('remote-leave', async (sid, room, cb) => { await io.in(sid).socketsLeave(room); ack(cb, true); });
    socket.on('remote-disconnect', async (sid, cb) => { await io.in(sid).disconnectSockets(true); ack(cb, true); });
    socket.on('server-emit-ack', async (cb) => {
      try { ack(cb, await io.serverSideEmitWithAck('ping-cluster', 'hello', 1)); }
      catch (e) { ack(cb, { error: String(e && e.message || e) }); }
    });
    socket.on('last-server-emit', (cb) => ack(cb, lastServerEmit));
    socket.on('broadcast-ack', async (room, cb) => {
      try { ack(cb, (await io.to(room).timeout(3000).emitWithAck('question', 'ready?')).sort()); }
      catch (e) { ack(cb, { error: String(e && e.message || e) }); }
    });
  });
  httpServer.listen(Number(process.env.PORT), '127.0.0.1', () =>
    console.error(`node-node ${name}: listening on 127.0.0.1:${process.env.PORT}`));
  const stop = () => { io.close(); pub.quit().catch(() => {}); sub.quit().catch(() => {}); setTimeout(() => process.exit(0), 200); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
main().catch((e) => { console.error(e); process.exit(1); });
