"use strict";
// The official socket.io-client 4.x against /socket.io/.

const { describe, test } = require("node:test");
const assert = require("node:assert/strict");
const { io, Manager } = require("socket.io-client");
const h = require("./helpers");

const { T, BASE } = h;
const ACK = 2000;

function once(emitter, event, timeout = h.WAIT) {
  return h.withTimeout(new Promise((resolve) => emitter.once(event, (...args) => resolve(args))), timeout, `"${event}"`);
}

/** A socket.io-client socket closed at the end of the test. */
function client(t, nsp = "/", opts = {}) {
  const sc = h.scope(t);
  const socket = io(BASE + nsp, { forceNew: true, reconnection: false, ...opts });
  sc.add(() => {
    socket.io.opts.reconnection = false;
    socket.io.reconnection(false);
    socket.disconnect();
    socket.io.engine && socket.io.engine.close();
  });
  return socket;
}

/** Resolves when connected; rejects on connect_error. Returns the auth event payload. */
function connected(socket, timeout = h.WAIT) {
  return h.withTimeout(
    new Promise((resolve, reject) => {
      let auth;
      let isConnected = false;
      const done = () => auth !== undefined && isConnected && resolve(auth);
      socket.once("auth", (a) => {
        auth = a;
        done();
      });
      socket.once("connect", () => {
        isConnected = true;
        done();
      });
      socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    }),
    timeout,
    "connect + auth"
  );
}

function bytes(n, seed) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** Deep compare where every binary value is compared as bytes. */
function normalize(v) {
  if (v instanceof ArrayBuffer) return { __bin: Buffer.from(v).toString("hex") };
  if (ArrayBuffer.isView(v)) return { __bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)]));
  return v;
}

for (const [label, opts] of [
  ["websocket only", { transports: ["websocket"] }],
  ["polling only", { transports: ["polling"] }],
]) {
  describe(`socket.io-client, ${label}`, () => {
    test("connects with forceNew, emits and gets message-back", T, async (t) => {
      const socket = client(t, "/", opts);
      const auth = await connected(socket);
      assert.deepEqual(auth, {});
      assert.equal(socket.io.engine.transport.name, opts.transports[0]);
      assert.equal(typeof socket.id, "string");
      assert.notEqual(socket.id, socket.io.engine.id);
      const back = once(socket, "message-back");
      socket.emit("message", 1, "2", { 3: [true] });
      assert.deepEqual(await back, [1, "2", { 3: [true] }]);
    });

    test("emitWithAck returns the acknowledged value", T, async (t) => {
      const socket = client(t, "/", opts);
      await connected(socket);
      assert.deepEqual(await socket.timeout(ACK).emitWithAck("message-with-ack", { a: [1, "b"] }), { a: [1, "b"] });
      const all = await new Promise((resolve, reject) =>
        socket.timeout(ACK).emit("message-with-ack", 1, "two", null, [3], (err, ...args) => (err ? reject(err) : resolve(args)))
      );
      assert.deepEqual(all, [1, "two", null, [3]]);
    });

    test("server-to-client ack: the server's ack request is answered by the client", T, async (t) => {
      const socket = client(t, "/", opts);
      await connected(socket);
      socket.on("message-back", (x, ack) => {
        assert.equal(typeof ack, "function", "message-back carried no ack request");
        ack(`pong-${x}`, { x });
      });
      const res = await new Promise((resolve, reject) =>
        socket.timeout(ACK).emit("message", "ping", (err, ...args) => (err ? reject(err) : resolve(args)))
      );
      assert.deepEqual(res, ["pong-ping", { x: "ping" }]);
    });

    test("binary (Buffer and Uint8Array in nested arguments) round trips byte-exact", T, async (t) => {
      const socket = client(t, "/", opts);
      await connected(socket);
      const args = [
        bytes(16, 1),
        { buf: bytes(3, 2), list: [new Uint8Array([0, 255, 128]), "text", { deep: bytes(1024, 3) }], n: 42 },
        "plain",
        new Uint8Array(0),
      ];
      const back = once(socket, "message-back");
      socket.emit("message", ...args);
      assert.deepEqual(normalize(await back), normalize(args));
      const acked = await socket.timeout(ACK).emitWithAck("message-with-ack", { payload: bytes(70000, 9) });
      assert.deepEqual(normalize(acked), normalize({ payload: bytes(70000, 9) }));
    });

    test("200 emits with acks are all acknowledged, in order", T, async (t) => {
      const socket = client(t, "/", opts);
      await connected(socket);
      const order = [];
      const acks = [];
      for (let i = 0; i < 200; i++) {
        acks.push(
          socket
            .timeout(4000)
            .emitWithAck("message-with-ack", i)
            .then((v) => {
              order.push(v);
              return v;
            })
        );
      }
      const values = await Promise.all(acks);
      assert.deepEqual(values, Array.from({ length: 200 }, (_, i) => i));
      assert.deepEqual(order, values, "acks arrived out of order");
    });

    test("a 500 KB string argument round trips", T, async (t) => {
      const socket = client(t, "/", opts);
      await connected(socket);
      const big = "0123456789abcdefghijklmnopqrstuvwxyz".repeat(Math.ceil(500000 / 36)).slice(0, 500000);
      const back = once(socket, "message-back");
      socket.emit("message", big);
      const [echo] = await back;
      assert.equal(echo.length, big.length);
      assert.equal(echo, big);
    });

    test("a 1.5 MB argument (over maxPayload) makes the server drop the connection", T, async (t) => {
      const socket = client(t, "/", opts);
      await connected(socket);
      let echoed = false;
      socket.on("message-back", () => (echoed = true));
      const disc = once(socket, "disconnect", 3000);
      socket.emit("message", "x".repeat(1500000));
      const [reason] = await disc;
      // reference: "transport close" over websocket (close 1009), "transport error" over polling (HTTP 413)
      assert.ok(["transport close", "transport error"].includes(reason), `reason ${reason}`);
      assert.equal(echoed, false);
      assert.equal(socket.connected, false);
    });
  });
}

describe("socket.io-client, default transports", () => {
  test("starts on polling then upgrades to websocket and keeps working", T, async (t) => {
    const socket = client(t);
    const firstTransport = h.withTimeout(
      new Promise((resolve) => socket.io.once("open", () => resolve(socket.io.engine.transport.name))),
      h.WAIT,
      "engine open"
    );
    await connected(socket);
    assert.equal(await firstTransport, "polling");
    if (socket.io.engine.transport.name !== "websocket") await once(socket.io.engine, "upgrade");
    assert.equal(socket.io.engine.transport.name, "websocket");
    assert.equal(await socket.timeout(ACK).emitWithAck("message-with-ack", "after upgrade"), "after upgrade");
  });

  test("with upgrade: false it stays on polling", T, async (t) => {
    const socket = client(t, "/", { upgrade: false });
    await connected(socket);
    await h.sleep(300);
    assert.equal(socket.io.engine.transport.name, "polling");
    assert.equal(await socket.timeout(ACK).emitWithAck("message-with-ack", "poll"), "poll");
  });
});

describe("socket.io-client auth and namespaces", () => {
  test("the auth option is delivered to the server (auth event)", T, async (t) => {
    const socket = client(t, "/", { auth: { token: "abc" }, transports: ["websocket"] });
    assert.deepEqual(await connected(socket), { token: "abc" });
  });

  test("the auth option works over polling too", T, async (t) => {
    const socket = client(t, "/", { auth: { token: "abc", n: 1 }, transports: ["polling"] });
    assert.deepEqual(await connected(socket), { token: "abc", n: 1 });
  });

  test("/custom namespace: connect, auth, event and ack", T, async (t) => {
    const socket = client(t, "/custom", { auth: { room: "r1" } });
    assert.deepEqual(await connected(socket), { room: "r1" });
    assert.equal(socket.nsp, "/custom");
    const back = once(socket, "message-back");
    socket.emit("message", "hello custom");
    assert.deepEqual(await back, ["hello custom"]);
    assert.equal(await socket.timeout(ACK).emitWithAck("message-with-ack", 7), 7);
  });

  test("two namespaces multiplexed on one Manager", T, async (t) => {
    const sc = h.scope(t);
    const manager = new Manager(BASE, { reconnection: false, transports: ["websocket"] });
    sc.add(() => manager.engine && manager.engine.close());
    const main = manager.socket("/", { auth: { which: "main" } });
    const custom = manager.socket("/custom", { auth: { which: "custom" } });
    sc.add(() => main.disconnect());
    sc.add(() => custom.disconnect());
    const [authMain, authCustom] = await Promise.all([connected(main), connected(custom)]);
    assert.deepEqual(authMain, { which: "main" });
    assert.deepEqual(authCustom, { which: "custom" });
    assert.equal(main.io, custom.io);
    assert.notEqual(main.id, custom.id);
    let crossTalk = false;
    main.on("message-back", (x) => x === "for custom" && (crossTalk = true));
    custom.on("message-back", (x) => x === "for main" && (crossTalk = true));
    const backMain = once(main, "message-back");
    const backCustom = once(custom, "message-back");
    main.emit("message", "for main");
    custom.emit("message", "for custom");
    assert.deepEqual(await backMain, ["for main"]);
    assert.deepEqual(await backCustom, ["for custom"]);
    // leaving one namespace does not affect the other
    const disc = once(custom, "disconnect");
    custom.disconnect();
    assert.deepEqual((await disc)[0], "io client disconnect");
    assert.equal(await main.timeout(ACK).emitWithAck("message-with-ack", "main alive"), "main alive");
    assert.equal(crossTalk, false, "an event was delivered to the wrong namespace");
  });

  test("unknown namespace: connect_error with message Invalid namespace", T, async (t) => {
    const socket = client(t, "/random");
    let connectedEvt = false;
    socket.on("connect", () => (connectedEvt = true));
    const [err] = await once(socket, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    assert.equal(connectedEvt, false);
    assert.equal(socket.active, false, "the client should give up after a namespace error");
  });
});

describe("socket.io-client disconnect and reconnection", () => {
  test("socket.disconnect() gives reason io client disconnect", T, async (t) => {
    const socket = client(t);
    await connected(socket);
    const disc = once(socket, "disconnect");
    socket.disconnect();
    assert.equal((await disc)[0], "io client disconnect");
    assert.equal(socket.connected, false);
  });

  test("reconnects after the engine is closed under it and can emit again", T, async (t) => {
    const socket = client(t, "/", {
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      transports: ["websocket"],
      auth: { token: "re" },
    });
    await connected(socket);
    const firstId = socket.id;
    const disc = once(socket, "disconnect");
    const again = connected(socket, 3000);
    socket.io.engine.close();
    assert.equal((await disc)[0], "forced close");
    assert.deepEqual(await again, { token: "re" });
    assert.notEqual(socket.id, firstId);
    assert.equal(await socket.timeout(ACK).emitWithAck("message-with-ack", "again"), "again");
  });

  test("reconnects after the server drops the connection (oversized packet)", T, async (t) => {
    const socket = client(t, "/", {
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      transports: ["websocket"],
    });
    await connected(socket);
    const disc = once(socket, "disconnect");
    const again = connected(socket, 3000);
    socket.emit("message", "y".repeat(1500000));
    const [reason] = await disc;
    assert.ok(["transport close", "transport error"].includes(reason), `reason ${reason}`);
    await again;
    assert.equal(await socket.timeout(ACK).emitWithAck("message-with-ack", "recovered"), "recovered");
  });

  test("reconnects over polling after the engine is closed", T, async (t) => {
    const socket = client(t, "/custom", {
      reconnection: true,
      reconnectionDelay: 50,
      reconnectionDelayMax: 100,
      transports: ["polling"],
    });
    await connected(socket);
    const again = connected(socket, 3000);
    socket.io.engine.close();
    await again;
    assert.equal(await socket.timeout(ACK).emitWithAck("message-with-ack", "poll again"), "poll again");
  });
});
