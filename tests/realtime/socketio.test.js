"use strict";
// Raw Socket.IO v5 packets (inside Engine.IO v4) over a raw WebSocket and over
// HTTP long-polling, against /socket.io/ with namespaces "/" and "/custom".

const { describe, test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

const { T, RS, SIO, PING_INTERVAL, PING_TIMEOUT, MAX_PAYLOAD, CONNECT_TIMEOUT } = h;
const SIO_PATH = "/socket.io/";
const PH = (num) => ({ _placeholder: true, num });

async function nextPacket(peer, label) {
  return h.decodeSio(await peer.nextText(h.WAIT, label));
}

/** Reads a (binary) packet and its attachments, returns {pkt, buffers, data}. */
async function nextWithAttachments(peer, label) {
  const pkt = await nextPacket(peer, label);
  const buffers = [];
  for (let i = 0; i < (pkt.attachments || 0); i++) buffers.push(await peer.nextBinary(h.WAIT, `attachment ${i}`));
  return { pkt, buffers, data: pkt.data === undefined ? undefined : h.reconstruct(pkt.data, buffers) };
}

function assertSid(data) {
  assert.equal(typeof data, "object");
  assert.equal(typeof data.sid, "string");
  assert.ok(data.sid.length > 0);
  for (const k of Object.keys(data)) assert.ok(["sid", "pid"].includes(k), `unexpected key ${k} in CONNECT reply`);
}

async function expectClosedWithoutReply(peer, label) {
  await peer.waitClose(h.WAIT, `${label}: the connection to be closed`);
  const replies = peer.queue.map(h.describeMsg);
  assert.deepEqual(replies, [], `${label}: unexpected replies before close`);
}

describe("Engine.IO layer on /socket.io/", () => {
  test("polling handshake carries the configured values", T, async (t) => {
    const sc = h.scope(t);
    const { open } = await h.pollingHandshake(SIO_PATH, sc);
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, PING_INTERVAL);
    assert.equal(open.pingTimeout, PING_TIMEOUT);
    assert.equal(open.maxPayload, MAX_PAYLOAD);
  });

  test("websocket handshake carries upgrades []", T, async (t) => {
    const { open } = await h.wsHandshake(h.scope(t), SIO_PATH);
    assert.deepEqual(open.upgrades, []);
    assert.equal(open.pingInterval, PING_INTERVAL);
    assert.equal(open.pingTimeout, PING_TIMEOUT);
    assert.equal(open.maxPayload, MAX_PAYLOAD);
  });

  test("bad EIO and unknown transport are rejected with 400", T, async (t) => {
    const sc = h.scope(t);
    const eio3 = await sc.request("GET", `${SIO_PATH}?EIO=3&transport=polling`);
    assert.equal(eio3.status, 400);
    assert.deepEqual(JSON.parse(eio3.body), { code: 5, message: "Unsupported protocol version" });
    const bad = await sc.request("GET", `${SIO_PATH}?EIO=4&transport=xhr`);
    assert.equal(bad.status, 400);
    assert.deepEqual(JSON.parse(bad.body), { code: 0, message: "Transport unknown" });
    assert.equal((await h.pollGet(SIO_PATH, "nope", sc)).status, 400);
  });

  test("polling with an Origin gets the CORS headers", T, async (t) => {
    const res = await h.scope(t).request("GET", h.eioPath(SIO_PATH, { transport: "polling" }), {
      headers: { Origin: "http://127.0.0.1:8080" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], "http://127.0.0.1:8080");
    assert.equal(res.headers["access-control-allow-credentials"], "true");
  });
});

describe("Socket.IO connect", () => {
  test("CONNECT to / replies 40{sid} (sid differs from the engine sid) then emits auth {}", T, async (t) => {
    const sc = h.scope(t);
    const { peer, open } = await h.wsHandshake(sc, SIO_PATH);
    peer.send("40");
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("40{"), raw);
    const reply = h.decodeSio(raw);
    assert.equal(reply.nsp, "/");
    assertSid(reply.data);
    assert.notEqual(reply.data.sid, open.sid);
    const auth = await nextPacket(peer, "auth");
    assert.deepEqual(auth, { type: SIO.EVENT, nsp: "/", data: ["auth", {}] });
  });

  test("the CONNECT payload is the handshake auth", T, async (t) => {
    const { auth, connectReply } = await h.sioConnect(h.scope(t), { auth: { token: "123" } });
    assertSid(connectReply.data);
    assert.deepEqual(auth, { token: "123" });
  });

  test("CONNECT to /custom replies 40/custom,{sid} and emits auth on /custom", T, async (t) => {
    const sc = h.scope(t);
    const { peer, open } = await h.wsHandshake(sc, SIO_PATH);
    peer.send("40/custom,");
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("40/custom,{"), raw);
    const reply = h.decodeSio(raw);
    assertSid(reply.data);
    assert.notEqual(reply.data.sid, open.sid);
    assert.deepEqual(await nextPacket(peer, "auth"), { type: SIO.EVENT, nsp: "/custom", data: ["auth", {}] });
  });

  test("CONNECT 40/custom without a trailing comma is accepted", T, async (t) => {
    const sc = h.scope(t);
    const { peer } = await h.wsHandshake(sc, SIO_PATH);
    peer.send("40/custom");
    const reply = await nextPacket(peer, "CONNECT reply");
    assert.equal(reply.type, SIO.CONNECT);
    assert.equal(reply.nsp, "/custom");
    assertSid(reply.data);
    assert.deepEqual(await nextPacket(peer, "auth"), { type: SIO.EVENT, nsp: "/custom", data: ["auth", {}] });
  });

  test("CONNECT to /custom with an auth payload", T, async (t) => {
    const { auth } = await h.sioConnect(h.scope(t), { nsp: "/custom", auth: { token: "abc", n: [1, 2] } });
    assert.deepEqual(auth, { token: "abc", n: [1, 2] });
  });

  test("extra pid/offset keys in the CONNECT payload are tolerated", T, async (t) => {
    const { auth, connectReply } = await h.sioConnect(h.scope(t), {
      connectPacket: '40{"pid":"abc","offset":"xyz","token":1}',
    });
    assertSid(connectReply.data);
    assert.equal(auth.token, 1);
  });

  test("unknown namespace gets 44/random,{message:Invalid namespace}; the connection stays usable", T, async (t) => {
    const sc = h.scope(t);
    const { peer } = await h.wsHandshake(sc, SIO_PATH);
    peer.send("40/random");
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("44/random,"), raw);
    assert.deepEqual(h.decodeSio(raw), { type: SIO.CONNECT_ERROR, nsp: "/random", data: { message: "Invalid namespace" } });
    peer.send('40/random,{"token":"x"}');
    assert.deepEqual(await nextPacket(peer), { type: SIO.CONNECT_ERROR, nsp: "/random", data: { message: "Invalid namespace" } });
    const { sid } = await h.sioJoin(peer, "/");
    assert.equal(typeof sid, "string");
  });

  test("/ and /custom on one engine connection get distinct sids and independent routing", T, async (t) => {
    const sc = h.scope(t);
    const { peer, sid: mainSid } = await h.sioConnect(sc);
    const { sid: customSid } = await h.sioJoin(peer, "/custom", { k: 1 });
    assert.notEqual(mainSid, customSid);
    peer.send('42/custom,["message","to custom"]');
    assert.deepEqual(await nextPacket(peer), { type: SIO.EVENT, nsp: "/custom", data: ["message-back", "to custom"] });
    peer.send('42["message","to main"]');
    assert.deepEqual(await nextPacket(peer), { type: SIO.EVENT, nsp: "/", data: ["message-back", "to main"] });
  });

  test("two connections get different Socket.IO sids", T, async (t) => {
    const sc = h.scope(t);
    const [a, b] = await Promise.all([h.sioConnect(sc), h.sioConnect(sc)]);
    assert.notEqual(a.sid, b.sid);
  });
});

describe("Socket.IO disconnect", () => {
  test("41 leaves /; a new CONNECT gets a fresh sid", T, async (t) => {
    const sc = h.scope(t);
    const { peer, sid } = await h.sioConnect(sc);
    peer.send("41");
    await h.sleep(100);
    const again = await h.sioJoin(peer, "/", { second: true });
    assert.notEqual(again.sid, sid);
    assert.deepEqual(again.auth, { second: true });
    peer.send('42["message","back again"]');
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", "back again"]);
  });

  test("41/custom leaves /custom only; / keeps working", T, async (t) => {
    const sc = h.scope(t);
    const { peer } = await h.sioConnect(sc);
    await h.sioJoin(peer, "/custom");
    peer.send("41/custom,");
    await h.sleep(100);
    peer.send('42["message","message to main namespace"]');
    assert.deepEqual(await nextPacket(peer), {
      type: SIO.EVENT,
      nsp: "/",
      data: ["message-back", "message to main namespace"],
    });
  });

  test("after 41/custom an EVENT for /custom closes the connection", T, async (t) => {
    const sc = h.scope(t);
    const { peer } = await h.sioConnect(sc);
    await h.sioJoin(peer, "/custom");
    peer.send("41/custom");
    await h.sleep(100);
    peer.send('42/custom,["message","x"]');
    await expectClosedWithoutReply(peer, "event after leaving /custom");
  });
});

describe("Socket.IO events", () => {
  test("message is echoed as message-back with the same arguments", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('42["message",1,"2",{"3":[true]}]');
    assert.deepEqual(await nextPacket(peer), { type: SIO.EVENT, nsp: "/", data: ["message-back", 1, "2", { 3: [true] }] });
  });

  test("message with no arguments, null, nested and unicode arguments", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('42["message"]');
    assert.deepEqual((await nextPacket(peer)).data, ["message-back"]);
    const args = [null, false, 0, -1.5, "", "héllo \u{1F600} \"quoted\" \\ \n", { a: { b: { c: [[], {}] } } }, [1, [2, [3]]]];
    peer.send("42" + JSON.stringify(["message", ...args]));
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", ...args]);
  });

  test("message on /custom is echoed on /custom", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t), { nsp: "/custom" });
    peer.send('42/custom,["message","hi",2]');
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("42/custom,["), raw);
    assert.deepEqual(h.decodeSio(raw).data, ["message-back", "hi", 2]);
  });

  test("50 events are echoed in order", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    for (let i = 0; i < 50; i++) peer.send(`42["message",${i}]`);
    for (let i = 0; i < 50; i++) assert.deepEqual((await nextPacket(peer)).data, ["message-back", i]);
  });

  test("a 300 KB argument is echoed", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    const big = "abcdefghij".repeat(30000);
    peer.send("42" + JSON.stringify(["message", big]));
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", big]);
  });

  test("unknown event names and numeric event names are ignored without closing", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('42["no-such-event",1]');
    peer.send('42[42,"numeric"]');
    peer.send('42["message","still here"]');
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", "still here"]);
  });
});

describe("Socket.IO acks", () => {
  test("message-with-ack is acknowledged with its arguments (43<id>[...])", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("43456["), raw);
    assert.deepEqual(h.decodeSio(raw), { type: SIO.ACK, nsp: "/", id: 456, data: [1, "2", { 3: [false] }] });
  });

  test("ack with no arguments is 43<id>[]", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('420["message-with-ack"]');
    assert.deepEqual(h.decodeSio(await peer.nextText()), { type: SIO.ACK, nsp: "/", id: 0, data: [] });
  });

  test("ack on /custom is 43/custom,<id>[...]", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t), { nsp: "/custom" });
    peer.send('42/custom,7["message-with-ack","x",{"y":null}]');
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("43/custom,7["), raw);
    assert.deepEqual(h.decodeSio(raw), { type: SIO.ACK, nsp: "/custom", id: 7, data: ["x", { y: null }] });
  });

  test("large ack ids and interleaved acks keep their ids", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    const ids = [123456789, 1, 99, 2147483647];
    for (const id of ids) peer.send(`42${id}["message-with-ack",${id}]`);
    for (const id of ids) assert.deepEqual(h.decodeSio(await peer.nextText()), { type: SIO.ACK, nsp: "/", id, data: [id] });
  });

  test("an ACK for an unknown id is ignored without closing", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send("4399[1]");
    peer.send('42["message","after"]');
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", "after"]);
  });

  test("server-to-client ack: message sent with an ack id comes back requesting an ack", T, async (t) => {
    // The server re-emits every argument of "message", so the client's ack
    // callback travels back as an ack request; acking it completes the
    // client's original ack.
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('4212["message","x"]');
    const back = await nextPacket(peer, "message-back with an ack id");
    assert.equal(back.type, SIO.EVENT);
    assert.deepEqual(back.data, ["message-back", "x"]);
    assert.equal(typeof back.id, "number", "message-back carries no ack id");
    peer.send(`43${back.id}["from client",{"n":1}]`);
    assert.deepEqual(await nextPacket(peer, "the original ack"), {
      type: SIO.ACK,
      nsp: "/",
      id: 12,
      data: ["from client", { n: 1 }],
    });
  });
});

describe("Socket.IO binary", () => {
  test("BINARY_EVENT with one attachment is echoed as 451- plus the frame", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('451-["message",{"_placeholder":true,"num":0}]');
    peer.send(Buffer.from([1, 2, 3]));
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("451-["), raw);
    assert.deepEqual(h.decodeSio(raw), { type: SIO.BINARY_EVENT, attachments: 1, nsp: "/", data: ["message-back", PH(0)] });
    assert.deepEqual(await peer.nextBinary(), Buffer.from([1, 2, 3]));
  });

  test("two attachments nested in objects and arrays round trip", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('452-["message",{"a":[{"_placeholder":true,"num":1}],"b":{"_placeholder":true,"num":0}},"s",7]');
    peer.send(Buffer.from([0xde, 0xad]));
    peer.send(Buffer.from([0xbe, 0xef, 0x00]));
    const { pkt, buffers, data } = await nextWithAttachments(peer);
    assert.equal(pkt.type, SIO.BINARY_EVENT);
    assert.equal(pkt.attachments, 2);
    assert.deepEqual(h.placeholderNums(pkt.data).sort(), [0, 1]);
    assert.equal(buffers.length, 2);
    assert.deepEqual(data, [
      "message-back",
      { a: [Buffer.from([0xbe, 0xef, 0x00])], b: Buffer.from([0xde, 0xad]) },
      "s",
      7,
    ]);
  });

  test("an empty binary attachment round trips", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('451-["message",{"_placeholder":true,"num":0}]');
    peer.send(Buffer.alloc(0));
    const { data } = await nextWithAttachments(peer);
    assert.deepEqual(data, ["message-back", Buffer.alloc(0)]);
  });

  test("binary ack: 452-789[...] is answered 462-789[...] with the frames", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    peer.send(Buffer.from([1, 2, 3]));
    peer.send(Buffer.from([4, 5, 6]));
    const raw = await peer.nextText();
    assert.ok(raw.startsWith("462-789["), raw);
    assert.deepEqual(h.decodeSio(raw), { type: SIO.BINARY_ACK, attachments: 2, nsp: "/", id: 789, data: [PH(0), PH(1)] });
    assert.deepEqual(await peer.nextBinary(), Buffer.from([1, 2, 3]));
    assert.deepEqual(await peer.nextBinary(), Buffer.from([4, 5, 6]));
  });

  test("binary event and binary ack on /custom", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t), { nsp: "/custom" });
    peer.send('451-/custom,["message",{"_placeholder":true,"num":0}]');
    peer.send(Buffer.from([9]));
    let raw = await peer.nextText();
    assert.ok(raw.startsWith("451-/custom,["), raw);
    assert.deepEqual(await peer.nextBinary(), Buffer.from([9]));
    peer.send('451-/custom,5["message-with-ack",{"_placeholder":true,"num":0}]');
    peer.send(Buffer.from([8, 8]));
    raw = await peer.nextText();
    assert.ok(raw.startsWith("461-/custom,5["), raw);
    assert.deepEqual(h.decodeSio(raw).data, [PH(0)]);
    assert.deepEqual(await peer.nextBinary(), Buffer.from([8, 8]));
  });

  test("10 attachments (the limit) are accepted", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    const phs = Array.from({ length: 10 }, (_, i) => PH(i));
    peer.send("4510-" + JSON.stringify(["message", ...phs]));
    for (let i = 0; i < 10; i++) peer.send(Buffer.from([i, i, i]));
    const { pkt, data } = await nextWithAttachments(peer);
    assert.equal(pkt.attachments, 10);
    assert.deepEqual(data, ["message-back", ...Array.from({ length: 10 }, (_, i) => Buffer.from([i, i, i]))]);
  });

  test("text and binary events keep their order", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('42["message","first"]');
    peer.send('451-["message",{"_placeholder":true,"num":0}]');
    peer.send(Buffer.from([2]));
    peer.send('42["message","third"]');
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", "first"]);
    assert.deepEqual((await nextWithAttachments(peer)).data, ["message-back", Buffer.from([2])]);
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", "third"]);
  });
});

describe("Socket.IO invalid packets close the connection", () => {
  const afterConnect = [
    ["unknown packet type (4abc)", "4abc"],
    ["packet type 7", '47["message"]'],
    ["EVENT with object data", "42{}"],
    ["EVENT with string data", '42"message"'],
    ["EVENT with an empty array", "42[]"],
    ["EVENT whose name is an object", '42[{"a":1},2]'],
    ["EVENT with reserved name connect", '42["connect"]'],
    ["EVENT with reserved name connect_error", '42["connect_error",1]'],
    ["EVENT with reserved name disconnect", '42["disconnect"]'],
    ["EVENT with reserved name disconnecting", '42["disconnecting"]'],
    ["EVENT with reserved name newListener", '42["newListener","x"]'],
    ["EVENT with reserved name removeListener", '42["removeListener","x"]'],
    ["EVENT with invalid JSON", '42["message",'],
    ["EVENT with an invalid ack id", '42abc["message-with-ack",1]'],
    ["ACK with non-array data", "4399{}"],
    ["CONNECT_ERROR sent by a client", '44{"message":"x"}'],
    ["too many attachments (11)", '4511-["message",{"_placeholder":true,"num":0}]'],
    ["a second CONNECT to an already joined namespace", "40"],
    ["EVENT for a namespace not joined", '42/custom,["message","x"]'],
    ["DISCONNECT for a namespace not joined", "41/custom,"],
  ];
  for (const [name, pkt] of afterConnect) {
    test(name, T, async (t) => {
      const { peer } = await h.sioConnect(h.scope(t));
      peer.send(pkt);
      if (pkt === "41/custom,") peer.send('42["message","x"]');
      await expectClosedWithoutReply(peer, name);
    });
  }

  test("a text packet while binary attachments are pending", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('451-["message",{"_placeholder":true,"num":0}]');
    peer.send('42["message","x"]');
    await expectClosedWithoutReply(peer, "text during reconstruction");
  });

  test("a binary frame with no pending binary packet", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send(Buffer.from([1, 2, 3]));
    await expectClosedWithoutReply(peer, "stray binary frame");
  });

  test("a placeholder referring to a missing attachment", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    peer.send('451-["message",{"_placeholder":true,"num":5}]');
    peer.send(Buffer.from([1]));
    await expectClosedWithoutReply(peer, "placeholder out of range");
  });

  const beforeConnect = [
    ["CONNECT with string data", '40"abc"'],
    ["CONNECT with array data", "40[1]"],
    ["EVENT before any CONNECT", '42["message","x"]'],
  ];
  for (const [name, pkt] of beforeConnect) {
    test(name, T, async (t) => {
      const { peer } = await h.wsHandshake(h.scope(t), SIO_PATH);
      peer.send(pkt);
      await expectClosedWithoutReply(peer, name);
    });
  }
});

describe("Socket.IO timeouts", () => {
  test("no CONNECT within connectTimeout closes the connection (pings answered)", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t), SIO_PATH);
    const info = await peer.waitClose(CONNECT_TIMEOUT + 1500, "the connect timeout");
    assert.ok(info.at >= CONNECT_TIMEOUT - 200, `closed too early: ${info.at.toFixed(0)} ms (ping timeout?)`);
    assert.ok(info.at <= CONNECT_TIMEOUT + 1000, `closed after ${info.at.toFixed(0)} ms`);
    assert.ok(peer.pings.length >= 2, `only ${peer.pings.length} pings before close`);
    assert.deepEqual(peer.queue.map(h.describeMsg), []);
  });

  test("a connected socket that answers pings outlives connectTimeout", T, async (t) => {
    const { peer } = await h.sioConnect(h.scope(t));
    await h.sleep(CONNECT_TIMEOUT + 300);
    assert.ok(!peer.isClosed, "closed although connected and answering pings");
    peer.send('42["message","alive"]');
    assert.deepEqual((await nextPacket(peer)).data, ["message-back", "alive"]);
  });

  test("a connected socket that stops answering pings is closed", T, async (t) => {
    const sc = h.scope(t);
    const peer = sc.ws(h.eioPath(SIO_PATH, { transport: "websocket" }), { autoPong: false });
    await peer.opened;
    assert.equal((await peer.nextText())[0], "0");
    peer.send("40");
    assert.equal(h.decodeSio(await peer.nextText()).type, SIO.CONNECT);
    const info = await peer.waitClose(h.WAIT, "the ping timeout");
    assert.ok(info.at <= PING_INTERVAL + PING_TIMEOUT + 700, `closed after ${info.at.toFixed(0)} ms`);
    assert.ok(peer.pings.length >= 1);
  });
});

describe("Socket.IO over HTTP long-polling", () => {
  test("CONNECT, auth, event and ack over polling", T, async (t) => {
    const sc = h.scope(t);
    const { sid: engineSid } = await h.pollingHandshake(SIO_PATH, sc);
    assert.equal((await h.pollPost(SIO_PATH, engineSid, '40{"token":"poll"}', sc)).status, 200);
    const [connect, auth] = (await h.pollPackets(SIO_PATH, engineSid, 2, sc)).map(h.decodeSio);
    assert.equal(connect.type, SIO.CONNECT);
    assertSid(connect.data);
    assert.notEqual(connect.data.sid, engineSid);
    assert.deepEqual(auth, { type: SIO.EVENT, nsp: "/", data: ["auth", { token: "poll" }] });
    const post = await h.pollPost(SIO_PATH, engineSid, ['42["message","p"]', '423["message-with-ack","q"]'].join(RS), sc);
    assert.equal(post.status, 200);
    const [ev, ack] = (await h.pollPackets(SIO_PATH, engineSid, 2, sc)).map(h.decodeSio);
    assert.deepEqual(ev, { type: SIO.EVENT, nsp: "/", data: ["message-back", "p"] });
    assert.deepEqual(ack, { type: SIO.ACK, nsp: "/", id: 3, data: ["q"] });
  });

  test("binary event over polling uses b<base64> attachments", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(SIO_PATH, sc);
    await h.pollPost(SIO_PATH, sid, "40/custom,", sc);
    await h.pollPackets(SIO_PATH, sid, 2, sc);
    const body = ['451-/custom,["message",{"_placeholder":true,"num":0}]', "b" + Buffer.from([1, 2, 3, 255]).toString("base64")];
    assert.equal((await h.pollPost(SIO_PATH, sid, body.join(RS), sc)).status, 200);
    const [head, att] = await h.pollPackets(SIO_PATH, sid, 2, sc);
    assert.deepEqual(h.decodeSio(head), {
      type: SIO.BINARY_EVENT,
      attachments: 1,
      nsp: "/custom",
      data: ["message-back", PH(0)],
    });
    assert.equal(att[0], "b");
    assert.deepEqual(Buffer.from(att.slice(1), "base64"), Buffer.from([1, 2, 3, 255]));
  });

  test("a namespace joined over polling keeps working after the websocket upgrade", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(SIO_PATH, sc);
    await h.pollPost(SIO_PATH, sid, "40", sc);
    const [connect] = (await h.pollPackets(SIO_PATH, sid, 2, sc)).map(h.decodeSio);
    assert.equal(connect.type, SIO.CONNECT);
    const peer = sc.ws(h.eioPath(SIO_PATH, { transport: "websocket", sid }));
    await peer.opened;
    peer.send("2probe");
    assert.equal(await peer.nextText(), "3probe");
    assert.deepEqual(h.decodePayload((await h.pollGet(SIO_PATH, sid, sc)).body), ["6"]);
    peer.send("5");
    peer.send('42["message","over ws"]');
    assert.deepEqual(await nextPacket(peer), { type: SIO.EVENT, nsp: "/", data: ["message-back", "over ws"] });
  });
});
