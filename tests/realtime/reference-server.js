"use strict";
// Reference "conformance server" built on the real npm socket.io 4.8.x and
// engine.io 6.x. The tests in this folder must pass against it; the C server
// (build/tablium_sio_conformance) must behave the same on the wire.
//
//   PORT=3000 node tests/realtime/reference-server.js
//
// - raw Engine.IO at /engine.io/ : echoes every message (text or binary)
// - Socket.IO at /socket.io/     : namespaces "/" and "/custom"; on connect emit
//   "auth" with the handshake auth payload; "message" -> "message-back" (same
//   args); "message-with-ack" -> ack with the same args.
// Both: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1e6, CORS
// {origin: true, credentials: true}; Socket.IO connectTimeout 1000 ms.

const http = require("node:http");
const { Server: SocketIOServer } = require("socket.io");
const engine = require("engine.io");

const PORT = Number(process.env.PORT || 3000);
const HOST = "127.0.0.1";

const common = {
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  cors: { origin: true, credentials: true },
};

const httpServer = http.createServer((req, res) => {
  // Only reached for paths that neither engine handles.
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("not found");
});

// Socket.IO on /socket.io/
const io = new SocketIOServer(httpServer, {
  ...common,
  path: "/socket.io/",
  connectTimeout: 1000,
  destroyUpgrade: false,
});

function onConnection(socket) {
  socket.emit("auth", socket.handshake.auth);
  socket.on("message", (...args) => {
    socket.emit("message-back", ...args);
  });
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
}
io.on("connection", onConnection);
io.of("/custom").on("connection", onConnection);

// raw Engine.IO on /engine.io/
const eio = new engine.Server({ ...common, destroyUpgrade: false });
eio.attach(httpServer, { path: "/engine.io/", destroyUpgrade: false });
eio.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.listen(PORT, HOST, () => {
  console.log(`reference conformance server listening on http://${HOST}:${PORT}`);
});

function shutdown() {
  io.close();
  eio.close();
  httpServer.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
