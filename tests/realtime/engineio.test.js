"use strict";
// Raw Engine.IO v4 over plain HTTP long-polling and WebSocket, against the
// echo endpoint at /engine.io/ (pingInterval 300, pingTimeout 200, maxPayload 1e6).

const { describe, test } = require("node:test");
const assert = require("node:assert/strict");
const h = require("./helpers");

const { T, RS, PING_INTERVAL, PING_TIMEOUT, MAX_PAYLOAD } = h;
const EIO = "/engine.io/";

const OPEN_KEYS = ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"];

function assertOpenPacket(open, upgrades) {
  assert.deepEqual(Object.keys(open).sort(), OPEN_KEYS);
  assert.equal(typeof open.sid, "string");
  assert.ok(open.sid.length > 0, "sid is empty");
  assert.deepEqual(open.upgrades, upgrades);
  assert.equal(open.pingInterval, PING_INTERVAL);
  assert.equal(open.pingTimeout, PING_TIMEOUT);
  assert.equal(open.maxPayload, MAX_PAYLOAD);
}

// The reference (engine.io 6.x) answers every rejected HTTP request with 400,
// Content-Type application/json and {"code":N,"message":"..."}.
function assertEioError(res, code, message) {
  assert.equal(res.error, undefined, `request failed: ${res.error}`);
  assert.equal(res.status, 400, `status ${res.status}, body ${res.body}`);
  assert.match(String(res.headers["content-type"]), /^application\/json/);
  assert.deepEqual(JSON.parse(res.body), { code, message });
}

const UNKNOWN_SID = [1, "Session ID unknown"];
const BAD_REQUEST = [3, "Bad request"];

async function assertSessionGone(sid, sc) {
  const res = await h.pollGet(EIO, sid, sc);
  assertEioError(res, ...UNKNOWN_SID);
}

describe("Engine.IO handshake", () => {
  test("polling handshake returns an open packet with the server config", T, async (t) => {
    const sc = h.scope(t);
    const res = await sc.request("GET", h.eioPath(EIO, { transport: "polling" }));
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /^text\/plain; ?charset=UTF-8$/i);
    assert.equal(res.body[0], "0", `body ${res.body}`);
    assert.ok(!res.body.includes(RS), "open packet must be alone in the payload");
    assertOpenPacket(JSON.parse(res.body.slice(1)), ["websocket"]);
  });

  test("every handshake gets its own sid", T, async (t) => {
    const sc = h.scope(t);
    const [a, b] = await Promise.all([h.pollingHandshake(EIO, sc), h.pollingHandshake(EIO, sc)]);
    assert.notEqual(a.sid, b.sid);
  });

  test("the t= cache buster and extra query parameters are accepted", T, async (t) => {
    const sc = h.scope(t);
    const res = await sc.request("GET", `${EIO}?EIO=4&transport=polling&t=Nxyz123&foo=bar`);
    assert.equal(res.status, 200);
    assertOpenPacket(JSON.parse(res.body.slice(1)), ["websocket"]);
  });

  test("websocket-only handshake sends the open packet as first frame with upgrades []", T, async (t) => {
    const sc = h.scope(t);
    const peer = sc.ws(h.eioPath(EIO, { transport: "websocket" }));
    await peer.opened;
    const first = await peer.nextText(h.WAIT, "the open packet");
    assert.equal(first[0], "0", first);
    assertOpenPacket(JSON.parse(first.slice(1)), []);
  });

  test("EIO=3 is rejected with 400 Unsupported protocol version", T, async (t) => {
    const res = await h.scope(t).request("GET", `${EIO}?EIO=3&transport=polling`);
    assertEioError(res, 5, "Unsupported protocol version");
  });

  test("missing EIO is rejected with 400", T, async (t) => {
    const res = await h.scope(t).request("GET", `${EIO}?transport=polling`);
    assertEioError(res, 5, "Unsupported protocol version");
  });

  test("non-numeric EIO is rejected with 400", T, async (t) => {
    const res = await h.scope(t).request("GET", `${EIO}?EIO=abc&transport=polling`);
    assertEioError(res, 5, "Unsupported protocol version");
  });

  test("unknown transport is rejected with 400 Transport unknown", T, async (t) => {
    const res = await h.scope(t).request("GET", `${EIO}?EIO=4&transport=abc`);
    assertEioError(res, 0, "Transport unknown");
  });

  test("missing transport is rejected with 400 Transport unknown", T, async (t) => {
    const res = await h.scope(t).request("GET", `${EIO}?EIO=4`);
    assertEioError(res, 0, "Transport unknown");
  });

  test("a handshake must be a GET: POST and PUT get 400 Bad handshake method", T, async (t) => {
    const sc = h.scope(t);
    const post = await sc.request("POST", `${EIO}?EIO=4&transport=polling`, { body: "4x" });
    assertEioError(post, 2, "Bad handshake method");
    const put = await sc.request("PUT", `${EIO}?EIO=4&transport=polling`, { body: "4x" });
    assertEioError(put, 2, "Bad handshake method");
  });

  test("unknown sid is rejected with 400 Session ID unknown (GET and POST)", T, async (t) => {
    const sc = h.scope(t);
    assertEioError(await h.pollGet(EIO, "doesnotexist", sc), ...UNKNOWN_SID);
    assertEioError(await h.pollPost(EIO, "doesnotexist", "4x", sc), ...UNKNOWN_SID);
  });

  test("transport=websocket as a plain GET (no upgrade) is rejected with 400 Bad request", T, async (t) => {
    const sc = h.scope(t);
    assertEioError(await sc.request("GET", `${EIO}?EIO=4&transport=websocket`), ...BAD_REQUEST);
    const { sid } = await h.pollingHandshake(EIO, sc);
    assertEioError(await sc.request("GET", `${EIO}?EIO=4&transport=websocket&sid=${sid}`), ...BAD_REQUEST);
  });

  test("websocket upgrade with an unknown transport or sid is refused with HTTP 400", T, async (t) => {
    const sc = h.scope(t);
    for (const path of [`${EIO}?EIO=4&transport=abc`, `${EIO}?EIO=4&transport=websocket&sid=doesnotexist`]) {
      const peer = sc.ws(path);
      await assert.rejects(peer.opened, undefined, path);
      assert.equal(peer.handshakeStatus, 400, path);
    }
  });

  test("websocket with EIO=3 or no EIO never gets an open packet and is closed", T, async (t) => {
    // The reference completes the WebSocket handshake and then writes an
    // HTTP 400 into the stream; refusing the upgrade with 400 is also fine.
    const sc = h.scope(t);
    for (const path of [`${EIO}?EIO=3&transport=websocket`, `${EIO}?transport=websocket`]) {
      const peer = sc.ws(path);
      const opened = await peer.opened.then(
        () => true,
        () => false
      );
      if (peer.handshakeStatus !== null) {
        assert.equal(peer.handshakeStatus, 400, path);
        continue;
      }
      if (opened) {
        await peer.waitClose(h.WAIT, `${path} to be closed`);
        assert.equal(peer.queue.filter((m) => m.text && m.text[0] === "0").length, 0, `${path} got an open packet`);
      }
    }
  });
});

describe("Engine.IO messages over HTTP long-polling", () => {
  test("a text message is echoed", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const post = await h.pollPost(EIO, sid, "4hello", sc);
    assert.equal(post.status, 200);
    assert.equal(post.body, "ok");
    assert.deepEqual(await h.pollPackets(EIO, sid, 1, sc), ["4hello"]);
  });

  test("several packets in one POST (\\x1e-separated) are all echoed in order", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const post = await h.pollPost(EIO, sid, ["4test1", "4test2", "4test3"].join(RS), sc);
    assert.equal(post.status, 200);
    assert.equal(post.body, "ok");
    assert.deepEqual(await h.pollPackets(EIO, sid, 3, sc), ["4test1", "4test2", "4test3"]);
  });

  test("queued packets are delivered together in one \\x1e-joined GET body", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    for (const p of ["4one", "4two", "4three"]) assert.equal((await h.pollPost(EIO, sid, p, sc)).status, 200);
    const res = await h.pollGet(EIO, sid, sc);
    assert.equal(res.status, 200);
    const packets = h.decodePayload(res.body).filter((p) => p !== "2");
    assert.deepEqual(packets, ["4one", "4two", "4three"]);
  });

  test("binary packets travel as b<base64> and are echoed", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const post = await h.pollPost(EIO, sid, `4hello${RS}bAQIDBA==`, sc);
    assert.equal(post.status, 200);
    assert.deepEqual(await h.pollPackets(EIO, sid, 2, sc), ["4hello", "bAQIDBA=="]);
    const big = Buffer.alloc(3000, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    assert.equal((await h.pollPost(EIO, sid, "b" + big.toString("base64"), sc)).status, 200);
    const [echo] = await h.pollPackets(EIO, sid, 1, sc);
    assert.equal(echo[0], "b");
    assert.deepEqual(Buffer.from(echo.slice(1), "base64"), big);
  });

  test("UTF-8 text survives the round trip", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const msg = "4héllo wörld € \u{1F600} 日本語";
    assert.equal((await h.pollPost(EIO, sid, msg, sc)).status, 200);
    const res = await h.pollGet(EIO, sid, sc);
    assert.equal(res.status, 200);
    assert.match(String(res.headers["content-type"]), /charset=UTF-8/i);
    assert.deepEqual(h.decodePayload(res.body).filter((p) => p !== "2"), [msg]);
  });

  test("a GET with nothing to send is held open until data arrives", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    let resolvedAt = null;
    const pending = h.pollGet(EIO, sid, sc).then((r) => {
      resolvedAt = h.now();
      return r;
    });
    await h.sleep(100);
    assert.equal(resolvedAt, null, "GET returned before any data was available");
    const postedAt = h.now();
    assert.equal((await h.pollPost(EIO, sid, "4late", sc)).status, 200);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.ok(resolvedAt >= postedAt);
    assert.deepEqual(h.decodePayload(res.body), ["4late"]);
  });

  test("an invalid packet closes the session", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    // reference: the POST itself is answered "ok" (or reset); the session is gone
    await h.pollPost(EIO, sid, "abc", sc);
    await assertSessionGone(sid, sc);
  });

  test("a concurrent second GET gets 400 and closes the session", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const first = h.pollGet(EIO, sid, sc);
    await h.sleep(30);
    const second = await h.pollGet(EIO, sid, sc);
    assert.equal(second.status, 400);
    const firstRes = await first;
    // reference: the pending GET is ended with a close packet "1"
    assert.equal(firstRes.status, 200);
    assert.ok(["1", "6"].includes(h.decodePayload(firstRes.body).filter((p) => p !== "2").pop()), firstRes.body);
    await assertSessionGone(sid, sc);
  });

  test("a concurrent second POST gets 400 and closes the session", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    // a POST whose body never completes keeps the data request busy
    const http = require("node:http");
    const slow = http.request({
      host: h.HOST,
      port: h.PORT,
      method: "POST",
      path: h.eioPath(EIO, { transport: "polling", sid }),
      headers: { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": "100" },
      agent: false,
    });
    slow.on("error", () => {});
    slow.on("response", (r) => r.resume());
    sc.add(() => slow.destroy());
    slow.write("4part");
    await h.sleep(50);
    const second = await h.pollPost(EIO, sid, "4other", sc);
    assert.equal(second.status, 400);
    await assertSessionGone(sid, sc);
  });

  test("a payload of exactly maxPayload bytes is accepted", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const body = "4" + "x".repeat(MAX_PAYLOAD - 1);
    const post = await h.pollPost(EIO, sid, body, sc);
    assert.equal(post.status, 200);
    assert.deepEqual(await h.pollPackets(EIO, sid, 1, sc), [body]);
  });

  test("a POST over maxPayload gets 413 and closes the session", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const post = await h.pollPost(EIO, sid, "4" + "x".repeat(1500000), sc);
    // reference: 413 (the connection may also be reset while uploading)
    if (!post.error) assert.equal(post.status, 413);
    await assertSessionGone(sid, sc);
  });
});

describe("Engine.IO messages over WebSocket", () => {
  test("a text frame is echoed", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    peer.send("4hello");
    assert.equal(await peer.nextText(), "4hello");
  });

  test("a binary frame is echoed as a binary frame", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    peer.send(Buffer.from([1, 2, 3, 4]));
    assert.deepEqual(await peer.nextBinary(), Buffer.from([1, 2, 3, 4]));
    peer.send(Buffer.from([0, 255, 4]));
    assert.deepEqual(await peer.nextBinary(), Buffer.from([0, 255, 4]));
  });

  test("UTF-8 text frames are echoed byte-exact", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    const msg = "4héllo wörld € \u{1F600} 日本語";
    peer.send(msg);
    assert.equal(await peer.nextText(), msg);
  });

  test("100 mixed text and binary frames come back in order", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    const sent = [];
    for (let i = 0; i < 100; i++) {
      const m = i % 3 === 0 ? Buffer.from([i, i + 1]) : `4msg-${i}`;
      sent.push(m);
      peer.send(m);
    }
    for (const m of sent) {
      if (typeof m === "string") assert.equal(await peer.nextText(), m);
      else assert.deepEqual(await peer.nextBinary(), m);
    }
  });

  test("an invalid packet closes the connection", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    peer.send("abc");
    await peer.waitClose();
  });

  test("a frame of exactly maxPayload bytes is accepted", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    const msg = "4" + "y".repeat(MAX_PAYLOAD - 1);
    peer.send(msg);
    assert.equal(await peer.nextText(), msg);
  });

  test("a frame over maxPayload closes the connection", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    peer.send("4" + "z".repeat(1500000));
    const info = await peer.waitClose();
    // reference: close code 1009 (message too big)
    assert.ok([1009, 1005, 1006, 1000, 1008].includes(info.code), `close code ${info.code}`);
    assert.equal(peer.queue.filter((m) => m.text && m.text.startsWith("4z")).length, 0);
  });
});

describe("Engine.IO heartbeat", () => {
  test("polling: the server sends a ping about pingInterval after the handshake", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const t0 = h.now();
    const res = await h.pollGet(EIO, sid, sc);
    const dt = h.now() - t0;
    assert.equal(res.status, 200);
    assert.deepEqual(h.decodePayload(res.body), ["2"]);
    assert.ok(dt >= PING_INTERVAL / 2 && dt <= PING_INTERVAL + 400, `ping after ${dt.toFixed(0)} ms`);
  });

  test("polling: answering pongs keeps the session alive across several intervals", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const t0 = h.now();
    for (let i = 0; i < 4; i++) {
      const res = await h.pollGet(EIO, sid, sc);
      assert.equal(res.status, 200, `poll ${i}: ${res.status} ${res.body}`);
      assert.deepEqual(h.decodePayload(res.body), ["2"]);
      const pong = await h.pollPost(EIO, sid, "3", sc);
      assert.equal(pong.status, 200);
      assert.equal(pong.body, "ok");
    }
    assert.ok(h.now() - t0 > PING_INTERVAL + PING_TIMEOUT, "test did not outlive one ping timeout");
    assert.equal((await h.pollPost(EIO, sid, "4still-alive", sc)).status, 200);
    assert.deepEqual(await h.pollPackets(EIO, sid, 1, sc), ["4still-alive"]);
  });

  test("polling: without pongs the session is closed after pingInterval + pingTimeout", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    await h.sleep(PING_INTERVAL + PING_TIMEOUT + 300);
    await assertSessionGone(sid, sc);
  });

  test("websocket: answering pings keeps the connection alive; pings are about pingInterval apart", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t));
    const t0 = h.now();
    while (peer.pings.length < 4) {
      await h.sleep(50);
      assert.ok(!peer.isClosed, `closed after ${peer.pings.length} pings`);
      assert.ok(h.now() - t0 < 3000, `only ${peer.pings.length} pings in 3 s`);
    }
    const gaps = peer.pings.map((p, i) => p - (i ? peer.pings[i - 1] : 0));
    for (const g of gaps) assert.ok(g >= PING_INTERVAL / 2 && g <= PING_INTERVAL + 400, `ping gaps ${gaps}`);
    peer.send("4alive");
    assert.equal(await peer.nextText(), "4alive");
  });

  test("websocket: without pongs the connection is closed after pingInterval + pingTimeout", T, async (t) => {
    const { peer } = await h.wsHandshake(h.scope(t), EIO, { autoPong: false });
    assert.equal(await peer.nextText(h.WAIT, "a ping"), "2");
    const info = await peer.waitClose(h.WAIT, "the ping timeout");
    const limit = PING_INTERVAL + PING_TIMEOUT;
    assert.ok(info.at >= limit - 150 && info.at <= limit + 700, `closed after ${info.at.toFixed(0)} ms`);
  });
});

describe("Engine.IO close", () => {
  test("polling: a close packet ends the pending GET with a noop and removes the session", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const pending = h.pollGet(EIO, sid, sc);
    await h.sleep(30);
    const post = await h.pollPost(EIO, sid, "1", sc);
    assert.equal(post.status, 200);
    assert.equal(post.body, "ok");
    const res = await pending;
    assert.equal(res.status, 200);
    assert.deepEqual(h.decodePayload(res.body), ["6"]);
    await assertSessionGone(sid, sc);
  });

  test("polling: a close packet with no pending GET removes the session", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    assert.equal((await h.pollPost(EIO, sid, "1", sc)).status, 200);
    await assertSessionGone(sid, sc);
  });

  test("websocket: closing the socket (after a close packet) removes the session", T, async (t) => {
    const sc = h.scope(t);
    const { peer, open } = await h.wsHandshake(sc);
    // while the session lives, its sid is known but bound to websocket
    assertEioError(await h.pollGet(EIO, open.sid, sc), ...BAD_REQUEST);
    // reference: "1" over websocket is ignored; the socket close ends the session
    peer.send("1");
    peer.close();
    await peer.waitClose();
    await h.sleep(50);
    await assertSessionGone(open.sid, sc);
  });
});

describe("Engine.IO upgrade", () => {
  async function probe(sc, sid) {
    const peer = sc.ws(h.eioPath(EIO, { transport: "websocket", sid }));
    await peer.opened;
    peer.send("2probe");
    assert.equal(await peer.nextText(h.WAIT, "3probe"), "3probe");
    return peer;
  }

  test("polling -> websocket: probe, noop on the GET, upgrade, then ws only", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const peer = await probe(sc, sid);
    const poll = await h.pollGet(EIO, sid, sc);
    assert.equal(poll.status, 200);
    assert.deepEqual(h.decodePayload(poll.body), ["6"]);
    peer.send("5");
    peer.send("4hello");
    assert.equal(await peer.nextText(), "4hello");
    peer.send(Buffer.from([9, 8, 7]));
    assert.deepEqual(await peer.nextBinary(), Buffer.from([9, 8, 7]));
    assertEioError(await h.pollGet(EIO, sid, sc), ...BAD_REQUEST);
    assertEioError(await h.pollPost(EIO, sid, "4x", sc), ...BAD_REQUEST);
  });

  test("a GET pending before the probe is answered with a noop", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const pending = h.pollGet(EIO, sid, sc);
    await h.sleep(30);
    const peer = await probe(sc, sid);
    const res = await pending;
    assert.equal(res.status, 200);
    assert.deepEqual(h.decodePayload(res.body), ["6"]);
    peer.send("5");
    peer.send("4after");
    assert.equal(await peer.nextText(), "4after");
  });

  test("packets queued during the upgrade are flushed over the websocket", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const peer = await probe(sc, sid);
    assert.deepEqual(h.decodePayload((await h.pollGet(EIO, sid, sc)).body), ["6"]);
    // still polling: POST a message; its echo has no GET to go to
    assert.equal((await h.pollPost(EIO, sid, "4queued", sc)).status, 200);
    await h.sleep(50);
    peer.send("5");
    assert.equal(await peer.nextText(), "4queued");
  });

  test("heartbeat moves to the websocket after the upgrade", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const peer = await probe(sc, sid);
    await h.pollGet(EIO, sid, sc);
    peer.send("5");
    const start = peer.pings.length;
    await h.sleep(PING_INTERVAL * 2 + 200);
    assert.ok(peer.pings.length - start >= 1, "no ping over the websocket");
    assert.ok(!peer.isClosed, "upgraded websocket was closed although pongs were sent");
    peer.send("4ok");
    assert.equal(await peer.nextText(), "4ok");
  });

  test("a second websocket for an already upgraded sid is refused or closed", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const peer = await probe(sc, sid);
    await h.pollGet(EIO, sid, sc);
    peer.send("5");
    peer.send("4x");
    assert.equal(await peer.nextText(), "4x");
    const second = sc.ws(h.eioPath(EIO, { transport: "websocket", sid }));
    const opened = await second.opened.then(
      () => true,
      () => false
    );
    if (opened) {
      await second.waitClose();
      assert.deepEqual(second.queue.map(h.describeMsg), []);
    } else {
      assert.equal(second.handshakeStatus, 400);
    }
    // the first one still works
    peer.send("4still");
    assert.equal(await peer.nextText(), "4still");
  });
});

describe("Engine.IO CORS (cors: {origin: true, credentials: true})", () => {
  const ORIGIN = "http://app.example.test";

  function assertCors(res) {
    assert.equal(res.headers["access-control-allow-origin"], ORIGIN);
    assert.equal(res.headers["access-control-allow-credentials"], "true");
    assert.match(String(res.headers.vary), /\bOrigin\b/i);
  }

  test("polling GET with an Origin reflects it with credentials", T, async (t) => {
    const res = await h.scope(t).request("GET", h.eioPath(EIO, { transport: "polling" }), { headers: { Origin: ORIGIN } });
    assert.equal(res.status, 200);
    assertCors(res);
  });

  test("polling POST with an Origin reflects it with credentials", T, async (t) => {
    const sc = h.scope(t);
    const { sid } = await h.pollingHandshake(EIO, sc);
    const res = await h.pollPost(EIO, sid, "4x", sc, { Origin: ORIGIN });
    assert.equal(res.status, 200);
    assert.equal(res.body, "ok");
    assertCors(res);
  });

  test("without an Origin header no Access-Control-Allow-Origin is sent", T, async (t) => {
    const res = await h.scope(t).request("GET", h.eioPath(EIO, { transport: "polling" }));
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], undefined);
  });

  test("error responses carry the CORS headers too", T, async (t) => {
    const res = await h.scope(t).request("GET", `${EIO}?EIO=4&transport=abc`, { headers: { Origin: ORIGIN } });
    assertEioError(res, 0, "Transport unknown");
    assertCors(res);
  });

  test("OPTIONS preflight is answered 204 with methods and the requested headers", T, async (t) => {
    const res = await h.scope(t).request("OPTIONS", h.eioPath(EIO, { transport: "polling" }), {
      headers: {
        Origin: ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.body, "");
    assertCors(res);
    const methods = String(res.headers["access-control-allow-methods"]).split(/\s*,\s*/);
    for (const m of ["GET", "POST"]) assert.ok(methods.includes(m), `allow-methods ${methods}`);
    assert.match(String(res.headers["access-control-allow-headers"]), /content-type/i);
  });
});
