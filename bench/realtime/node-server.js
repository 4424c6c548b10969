// The peer of bench/realtime/run.sh: socket.io 4.8 (Node.js) with the same events as ours.c.
'use strict';
const http = require('node:http');
const { Server } = require('socket.io');
const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });
io.on('connection', (socket) => {
  socket.on('join', (cb) => { socket.join('bench'); if (typeof cb === 'function') cb(true); });
  socket.on('broadcast', (...args) => io.to('bench').emit('tick', ...args));
});
httpServer.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => { io.close(); process.exit(0); });
