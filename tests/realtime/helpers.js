"use strict";
// Shared helpers for the realtime protocol tests: raw HTTP long-polling,
// a queued WebSocket peer, and a small Socket.IO v5 packet decoder written
// from the protocol document (socketio/socket.io-protocol README).

const http = require("node:http");
const { performance } = require("node:perf_hooks");
const WebSocket = require("ws");

const BASE = (process.env.SIO_URL || "http://127.0.0.1:3000").replace(/\/+$/, "");
const { hostname: HOST, port: PORT_STR } = new URL(BASE);
const PORT = Number(PORT_STR || 80);
const WS_BASE = BASE.replace(/^http/, "ws");

// Server configuration the tests assume (same as the official test suites).
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
const MAX_PAYLOAD = 1000000;
const CONNECT_TIMEOUT = 1000;

// Per-test timeout (node:test option) and the default wait for one event.
const T = { timeout: 5000 };
const WAIT = 2000;

const RS = "\x1e"; // Engine.IO v4 payload separator

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function withTimeout(promise, ms, label) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function qs(params) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

// --------------------------------------------------------------------------
// Per-test resource scope: everything opened through it is closed in t.after.

class Scope {
  constructor(t) {
    this.items = new Set();
    if (t && typeof t.after === "function") t.after(() => this.closeAll());
  }
  add(closeFn) {
    const item = { close: closeFn };
    this.items.add(item);
    return item;
  }
  closeAll() {
    for (const item of this.items) {
      try {
        item.close();
      } catch {
        /* ignore */
      }
    }
    this.items.clear();
  }
  ws(path, opts) {
    const peer = new WsPeer(WS_BASE + path, opts);
    this.add(() => peer.terminate());
    return peer;
  }
  request(method, path, opts) {
    return request(method, path, { ...opts, scope: this });
  }
}

function scope(t) {
  return new Scope(t);
}

// --------------------------------------------------------------------------
// Raw HTTP

/**
 * One HTTP request on its own connection. Resolves with
 * { status, headers, body (string), raw (Buffer) } or, when the connection
 * fails or is reset before a response, { error }.
 */
function request(method, path, { body, headers = {}, scope: sc, timeout = WAIT } = {}) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(v);
      }
    };
    const hdrs = { ...headers };
    if (body !== undefined && hdrs["Content-Type"] === undefined && hdrs["content-type"] === undefined) {
      hdrs["Content-Type"] = "text/plain;charset=UTF-8";
    }
    const req = http.request({ host: HOST, port: PORT, method, path, headers: hdrs, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const raw = Buffer.concat(chunks);
        finish({ status: res.statusCode, headers: res.headers, raw, body: raw.toString("utf8") });
      });
      res.on("error", (e) => finish({ error: e.message }));
      res.on("aborted", () => finish({ error: "aborted" }));
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish({ error: `no response within ${timeout} ms` });
    }, timeout);
    req.on("error", (e) => finish({ error: e.message }));
    if (sc) sc.add(() => req.destroy());
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function eioPath(base, params) {
  return `${base}?${qs({ EIO: 4, ...params })}`;
}

/** Engine.IO v4 long-polling handshake; returns {sid, open, res}. */
async function pollingHandshake(base = "/engine.io/", sc) {
  const res = await request("GET", eioPath(base, { transport: "polling" }), { scope: sc });
  if (res.error) throw new Error(`handshake failed: ${res.error}`);
  if (res.status !== 200) throw new Error(`handshake status ${res.status}: ${res.body}`);
  if (!res.body.startsWith("0")) throw new Error(`handshake body is not an open packet: ${res.body}`);
  const open = JSON.parse(res.body.slice(1));
  return { sid: open.sid, open, res };
}

function pollGet(base, sid, sc, timeout) {
  return request("GET", eioPath(base, { transport: "polling", sid }), { scope: sc, timeout });
}

function pollPost(base, sid, body, sc, headers) {
  return request("POST", eioPath(base, { transport: "polling", sid }), { body, scope: sc, headers });
}

function decodePayload(body) {
  return body.length === 0 ? [] : body.split(RS);
}

/**
 * Polls until `count` non-ping packets were received (pings are answered with
 * a POSTed pong). Returns the packets (strings) in order.
 */
async function pollPackets(base, sid, count, sc, { timeout = WAIT } = {}) {
  const deadline = now() + timeout;
  const out = [];
  while (out.length < count) {
    const left = deadline - now();
    if (left <= 0) throw new Error(`got ${out.length}/${count} packets by polling: ${JSON.stringify(out)}`);
    const res = await pollGet(base, sid, sc, left);
    if (res.error) throw new Error(`poll failed: ${res.error} (have ${JSON.stringify(out)})`);
    if (res.status !== 200) throw new Error(`poll status ${res.status}: ${res.body} (have ${JSON.stringify(out)})`);
    for (const p of decodePayload(res.body)) {
      if (p === "2") {
        const pong = await pollPost(base, sid, "3", sc);
        if (pong.status !== 200) throw new Error(`pong POST status ${pong.status}`);
      } else if (p !== "6") {
        out.push(p);
      }
    }
  }
  return out;
}

// --------------------------------------------------------------------------
// WebSocket peer with a message queue

class WsPeer {
  /**
   * opts.autoPong (default true): answer Engine.IO pings ("2") with "3" and
   * hide them from the queue. opts.headers: extra upgrade headers.
   */
  constructor(url, { autoPong = true, headers } = {}) {
    this.url = url;
    this.autoPong = autoPong;
    this.queue = [];
    this.waiters = [];
    this.pings = [];
    this.t0 = now();
    this.closeInfo = null;
    this.handshakeStatus = null;
    this.ws = new WebSocket(url, { perMessageDeflate: false, headers });
    this.ws.on("error", () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.once("open", resolve);
      this.ws.once("unexpected-response", (req, res) => {
        this.handshakeStatus = res.statusCode;
        res.resume();
        reject(new Error(`websocket handshake rejected with HTTP ${res.statusCode}`));
        req.destroy();
      });
      this.ws.once("close", () => reject(new Error("websocket closed before open")));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.on("close", (code, reason) => {
        this.closeInfo = { code, reason: reason.toString(), at: now() - this.t0 };
        resolve(this.closeInfo);
        this._wake();
      });
    });
    this.ws.on("message", (data, isBinary) => {
      let msg;
      if (isBinary) {
        msg = { binary: Buffer.from(data), at: now() - this.t0 };
      } else {
        const text = data.toString("utf8");
        if (text === "2") this.pings.push(now() - this.t0);
        if (text === "2" && this.autoPong) {
          this.send("3");
          return;
        }
        msg = { text, at: now() - this.t0 };
      }
      this.queue.push(msg);
      this._wake();
    });
  }

  _wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  send(data) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
  }

  get isClosed() {
    return this.closeInfo !== null;
  }

  /** Next message ({text} or {binary}); rejects on timeout or close. */
  async next(timeout = WAIT, label = "a websocket message") {
    const deadline = now() + timeout;
    for (;;) {
      if (this.queue.length) return this.queue.shift();
      if (this.closeInfo) throw new Error(`websocket closed (code ${this.closeInfo.code}) while waiting for ${label}`);
      const left = deadline - now();
      if (left <= 0) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async nextText(timeout = WAIT, label = "a text frame") {
    const m = await this.next(timeout, label);
    if (m.text === undefined) throw new Error(`expected a text frame (${label}), got binary ${m.binary.toString("hex")}`);
    return m.text;
  }

  async nextBinary(timeout = WAIT, label = "a binary frame") {
    const m = await this.next(timeout, label);
    if (m.binary === undefined) throw new Error(`expected a binary frame (${label}), got text ${JSON.stringify(m.text)}`);
    return m.binary;
  }

  /** Waits for the connection to close; returns {code, reason, at}. */
  async waitClose(timeout = WAIT, label = "the websocket to close") {
    return withTimeout(this.closed, timeout, label);
  }

  /** Asserts nothing arrives and the socket stays open for `ms`. */
  async expectSilence(ms) {
    await sleep(ms);
    if (this.queue.length) throw new Error(`unexpected message(s): ${JSON.stringify(this.queue.map(describeMsg))}`);
    if (this.closeInfo) throw new Error(`websocket closed unexpectedly (code ${this.closeInfo.code})`);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close();
  }

  terminate() {
    try {
      this.ws.terminate();
    } catch {
      /* ignore */
    }
  }
}

function describeMsg(m) {
  return m.text !== undefined ? m.text : `<binary ${m.binary.toString("hex")}>`;
}

/** Opens a websocket-only Engine.IO session; returns {peer, open}. */
async function wsHandshake(sc, base = "/engine.io/", opts) {
  const peer = sc.ws(eioPath(base, { transport: "websocket" }), opts);
  await peer.opened;
  const first = await peer.nextText(WAIT, "the open packet");
  if (!first.startsWith("0")) throw new Error(`first frame is not an open packet: ${first}`);
  return { peer, open: JSON.parse(first.slice(1)) };
}

// --------------------------------------------------------------------------
// Socket.IO v5 packets (the part after the Engine.IO "4")

const SIO = { CONNECT: 0, DISCONNECT: 1, EVENT: 2, ACK: 3, CONNECT_ERROR: 4, BINARY_EVENT: 5, BINARY_ACK: 6 };

/**
 * Decodes an Engine.IO message packet carrying a Socket.IO packet, e.g.
 * '451-/custom,12["x",{"_placeholder":true,"num":0}]'. Strict on the header:
 * throws if it does not follow <type>[<n>-][<nsp>,][<id>][json].
 */
function decodeSio(eioText) {
  if (typeof eioText !== "string" || eioText[0] !== "4") throw new Error(`not an Engine.IO message: ${eioText}`);
  const s = eioText.slice(1);
  let i = 0;
  const type = Number(s[i++]);
  if (!(type >= 0 && type <= 6)) throw new Error(`bad Socket.IO type in ${eioText}`);
  const pkt = { type, nsp: "/" };
  if (type === SIO.BINARY_EVENT || type === SIO.BINARY_ACK) {
    const start = i;
    while (s[i] >= "0" && s[i] <= "9") i++;
    if (s[i] !== "-" || i === start) throw new Error(`bad attachment count in ${eioText}`);
    pkt.attachments = Number(s.slice(start, i));
    i++;
  }
  if (s[i] === "/") {
    const start = i;
    while (i < s.length && s[i] !== ",") i++;
    pkt.nsp = s.slice(start, i);
    if (s[i] === ",") i++;
  }
  const idStart = i;
  while (s[i] >= "0" && s[i] <= "9") i++;
  if (i > idStart) pkt.id = Number(s.slice(idStart, i));
  const rest = s.slice(i);
  if (rest.length) pkt.data = JSON.parse(rest);
  return pkt;
}

/** Replaces {_placeholder:true,num:n} with buffers[n]. */
function reconstruct(data, buffers) {
  if (Array.isArray(data)) return data.map((d) => reconstruct(d, buffers));
  if (data && typeof data === "object") {
    if (data._placeholder === true && typeof data.num === "number") {
      if (data.num < 0 || data.num >= buffers.length) throw new Error(`placeholder ${data.num} out of range`);
      return buffers[data.num];
    }
    const out = {};
    for (const [k, v] of Object.entries(data)) out[k] = reconstruct(v, buffers);
    return out;
  }
  return data;
}

/** Collects the placeholder numbers used in data. */
function placeholderNums(data, acc = []) {
  if (Array.isArray(data)) data.forEach((d) => placeholderNums(d, acc));
  else if (data && typeof data === "object") {
    if (data._placeholder === true) acc.push(data.num);
    else Object.values(data).forEach((v) => placeholderNums(v, acc));
  }
  return acc;
}

/**
 * Opens a websocket Engine.IO session on /socket.io/ and connects a namespace.
 * Returns {peer, open, sid (socket.io sid), auth}. Pings are answered.
 */
async function sioConnect(sc, { nsp = "/", auth, connectPacket } = {}) {
  const { peer, open } = await wsHandshake(sc, "/socket.io/");
  const pkt = connectPacket || `40${nsp === "/" ? "" : nsp + ","}${auth !== undefined ? JSON.stringify(auth) : ""}`;
  peer.send(pkt);
  const reply = decodeSio(await peer.nextText(WAIT, "the CONNECT reply"));
  if (reply.type !== SIO.CONNECT || reply.nsp !== nsp) throw new Error(`unexpected CONNECT reply ${JSON.stringify(reply)}`);
  const authPkt = decodeSio(await peer.nextText(WAIT, "the auth event"));
  if (authPkt.type !== SIO.EVENT || authPkt.data[0] !== "auth") throw new Error(`unexpected auth event ${JSON.stringify(authPkt)}`);
  return { peer, open, sid: reply.data.sid, connectReply: reply, auth: authPkt.data[1] };
}

/** Connects an extra namespace on an existing peer. */
async function sioJoin(peer, nsp, auth) {
  peer.send(`40${nsp === "/" ? "" : nsp + ","}${auth !== undefined ? JSON.stringify(auth) : ""}`);
  const reply = decodeSio(await peer.nextText(WAIT, `the CONNECT reply for ${nsp}`));
  if (reply.type !== SIO.CONNECT || reply.nsp !== nsp) throw new Error(`unexpected CONNECT reply ${JSON.stringify(reply)}`);
  const authPkt = decodeSio(await peer.nextText(WAIT, `the auth event for ${nsp}`));
  if (authPkt.type !== SIO.EVENT || authPkt.nsp !== nsp || authPkt.data[0] !== "auth") {
    throw new Error(`unexpected auth event ${JSON.stringify(authPkt)}`);
  }
  return { sid: reply.data.sid, auth: authPkt.data[1] };
}

module.exports = {
  BASE,
  WS_BASE,
  HOST,
  PORT,
  PING_INTERVAL,
  PING_TIMEOUT,
  MAX_PAYLOAD,
  CONNECT_TIMEOUT,
  T,
  WAIT,
  RS,
  sleep,
  now,
  withTimeout,
  qs,
  scope,
  request,
  eioPath,
  pollingHandshake,
  pollGet,
  pollPost,
  decodePayload,
  pollPackets,
  WsPeer,
  wsHandshake,
  SIO,
  decodeSio,
  reconstruct,
  placeholderNums,
  sioConnect,
  sioJoin,
  describeMsg,
};
