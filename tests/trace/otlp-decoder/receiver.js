'use strict';
/*
 * An OTLP/HTTP receiver for tests/trace/otlp_test.c, independent of tablium: it decodes what the
 * exporter sends with the protobufjs code that @opentelemetry/otlp-transformer generated from
 * the official opentelemetry-proto definitions, and records what it understood.
 *
 *   node receiver.js        listens on 127.0.0.1 (a free port) and prints {"port": N}
 *
 * POST /v1/traces  an ExportTraceServiceRequest in OTLP JSON (application/json) or protobuf
 *                  (application/x-protobuf). Protobuf is decoded by the generated decode and
 *                  verify, and must be the canonical encoding of what it decodes to: encoding
 *                  the decoded message again gives the same bytes (so an unknown field, a field
 *                  out of order, a non-minimal varint or invalid UTF-8 in a string is an error);
 *                  ids must have their length and not be all zero. The answer is in the
 *                  request's encoding (an ExportTraceServiceResponse, or a google.rpc.Status for
 *                  errors), as OTLP/HTTP says. JSON: decoding follows the OTLP spec's
 *                  JSON mapping: traceId/spanId/parentSpanId are hex (checked: lowercase, 16 and
 *                  8 bytes, not all zero), enums integers, int64 decimal strings, lowerCamelCase
 *                  keys. The object then goes through the generated fromObject and verify, is
 *                  encoded to protobuf and decoded back, and every field the request had must be
 *                  in the decoded message with the same value: an unknown field, a mistyped
 *                  value (an int64 as a JSON number, an enum by name, a string where a number
 *                  goes) or two members of a oneof is an error. Errors answer 400 and are
 *                  recorded. How it answers otherwise is set through /control.
 * Each request records the connection it came on ("conn", counted from 1 since start), its
 * Content-Encoding ("encoding"; a gzip body is gunzipped before decoding, "bytes" is then the
 * decompressed size and "wireBytes" what came).
 * GET  /received   {"requests": [...], "spans": [...], "errors": [...], "held": n, "totals":
 *                  {...}}: since the last reset, but totals (decoded requests, accepted spans,
 *                  errors) since start. Spans are in the decoded message's own shape (toObject,
 *                  ids back to hex), with their resource and scope and the index of the request
 *                  that brought them.
 * POST /control    {"reset": true}  forget what was received
 *                  {"plan": [action...]}  answers for the next requests, in order, then
 *                  {"default": action}  for the rest. action: {"status": 503, "retryAfter":
 *                  "1"} | {"hang": true} (no answer until released) | {"partial":
 *                  {"rejectedSpans": "2", "errorMessage": "..."}} | {"ok": true}; with
 *                  "chunked": true the answer's body goes in pieces (Transfer-Encoding:
 *                  chunked), with "close": true it says Connection: close and closes;
 *                  {"drop": true} closes the connection without answering; {"redirect":
 *                  "/moved/v1/traces"} answers 307 with that Location (POST /moved/v1/traces
 *                  is taken as /v1/traces is, and always answered {"ok": true})
 *                  {"closeIdle": true}  closes the connections that wait for a request
 *                  {"release": true}  answers the held requests with the default action
 *                  {"quit": true}
 */
const http = require('http');
const zlib = require('zlib');
const path = require('path');

const root = require(path.join(__dirname, 'node_modules/@opentelemetry/otlp-transformer/build/src/generated/root.js'));
const pkg = require(path.join(__dirname, 'node_modules/@opentelemetry/otlp-transformer/package.json'));
const pb = require('protobufjs/minimal');

const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const ExportTraceServiceResponse = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
const DECODER = `${pkg.name}@${pkg.version} (protobufjs ${require('protobufjs/package.json').version})`;

if (!pb.util.Long) {
  // Without long.js protobufjs reads int64 strings with parseInt and loses nanoseconds.
  console.error('receiver: protobufjs has no Long support');
  process.exit(2);
}

const ID_BYTES = { traceId: 16, spanId: 8, parentSpanId: 8 };

class DecodeError extends Error {}
function fail(msg) {
  throw new DecodeError(msg);
}

/* A copy of v with every id field (a string under traceId, spanId or parentSpanId) replaced by
 * onId(key, value, where) and every other leaf by onLeaf(leaf). */
function mapIds(v, where, onId, onLeaf = (x) => x) {
  if (Array.isArray(v)) return v.map((e, i) => mapIds(e, `${where}[${i}]`, onId, onLeaf));
  if (v === null || typeof v !== 'object') return onLeaf(v);
  const o = {};
  for (const [k, e] of Object.entries(v))
    o[k] = k in ID_BYTES && typeof e === 'string' ? onId(k, e, `${where}.${k}`) : mapIds(e, `${where}.${k}`, onId, onLeaf);
  return o;
}

/* OTLP JSON's hex ids become bytes (what the generated fromObject takes for a bytes field). */
function hexToBytes(k, e, where) {
  const n = ID_BYTES[k];
  if (k === 'parentSpanId' && e === '') return Buffer.alloc(0);
  if (!new RegExp(`^[0-9a-f]{${2 * n}}$`).test(e)) fail(`${where}: "${e}" is not ${2 * n} lowercase hex digits`);
  if (/^0+$/.test(e)) fail(`${where}: all zero (an invalid id)`);
  return Buffer.from(e, 'hex');
}

const SPECIAL_DOUBLES = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

/* Every field of the request must come back from protobuf with the same value. */
function sameAsDecoded(inp, out, where, key) {
  if (inp === null) fail(`${where}: null (leave the field out instead)`);
  if (Array.isArray(inp)) {
    if (!Array.isArray(out)) fail(`${where}: an array where the proto has no repeated field`);
    if (inp.length !== out.length) fail(`${where}: ${inp.length} elements, ${out.length} decoded`);
    inp.forEach((e, i) => sameAsDecoded(e, out[i], `${where}[${i}]`, key));
    return;
  }
  if (typeof inp === 'object') {
    if (out === null || typeof out !== 'object' || Array.isArray(out))
      fail(`${where}: an object where the proto has a ${typeof out}`);
    const keys = Object.keys(inp);
    if ((key === 'value' || key === 'values') && keys.length !== 1)
      fail(`${where}: an AnyValue with ${keys.length} members of its oneof (${keys.join(', ')})`);
    for (const k of keys) {
      if (!(k in out) || typeof out[k] === 'function')
        fail(`${where}.${k}: not a field of this message (unknown, or not lowerCamelCase)`);
      sameAsDecoded(inp[k], out[k], `${where}.${k}`, k);
    }
    return;
  }
  if (key in ID_BYTES) {
    const hex = Buffer.from(out, 'base64').toString('hex');
    if (hex !== inp) fail(`${where}: "${inp}" decodes as "${hex}"`);
    return;
  }
  if (typeof inp === 'string' && typeof out === 'number' && inp in SPECIAL_DOUBLES) {
    if (!Object.is(SPECIAL_DOUBLES[inp], out)) fail(`${where}: "${inp}" decodes as ${out}`);
    return;
  }
  if (typeof inp !== typeof out) {
    const int64 = key === 'intValue' || /UnixNano$/.test(key) || key === 'rejectedSpans';
    const hint = int64 && typeof inp === 'number' ? ' (int64 is a decimal string in OTLP JSON)'
      : key === 'kind' || key === 'code' ? ' (enums are integers in OTLP JSON)' : '';
    fail(`${where}: a JSON ${typeof inp} where the proto has a ${typeof out}${hint}`);
  }
  if (inp !== out) fail(`${where}: ${JSON.stringify(inp)} decodes as ${JSON.stringify(out)}`);
}

/* For the record: ids (base64 after toObject) back to hex, NaN and the infinities as proto3 JSON
 * writes them. */
const b64ToHex = (k, e) => Buffer.from(e, 'base64').toString('hex');
const nonFinite = (x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x);
const hexIds = (v) => mapIds(v, '$', b64ToHex, nonFinite);

/* The message make() builds, checked by the generated verify; its errors become DecodeErrors. */
function verified(make, what) {
  let msg;
  try {
    msg = make();
  } catch (e) {
    fail(`${what}: ${e.message}`);
  }
  const bad = ExportTraceServiceRequest.verify(msg);
  if (bad) fail(`verify: ${bad}`);
  return msg;
}

/* The decoded ExportTraceServiceRequest (plain object, ids hex), or a DecodeError. */
function decode(text) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`not JSON: ${e.message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('not a JSON object');
  const msg = verified(() => ExportTraceServiceRequest.fromObject(mapIds(json, '$', hexToBytes)), 'fromObject');
  const wire = ExportTraceServiceRequest.encode(msg).finish();
  const back = ExportTraceServiceRequest.decode(wire);
  const full = ExportTraceServiceRequest.toObject(back, { longs: String, bytes: String, defaults: true, arrays: true });
  sameAsDecoded(json, full, '$', '');
  return hexIds(ExportTraceServiceRequest.toObject(back, { longs: String, bytes: String, arrays: true }));
}

/* Protobuf ids (base64 after toObject) must have their length and not be all zero; they come
 * back as hex. */
function checkedHex(k, e, where) {
  const b = Buffer.from(e, 'base64');
  if (k === 'parentSpanId' && b.length === 0) return '';
  if (b.length !== ID_BYTES[k]) fail(`${where}: ${b.length} bytes, not ${ID_BYTES[k]}`);
  if (b.every((x) => x === 0)) fail(`${where}: all zero (an invalid id)`);
  return b.toString('hex');
}

/* The decoded ExportTraceServiceRequest from protobuf bytes (plain object, ids hex). */
function decodeProtobuf(buf) {
  const msg = verified(() => ExportTraceServiceRequest.decode(buf), 'protobuf decode');
  const again = Buffer.from(ExportTraceServiceRequest.encode(msg).finish());
  if (!again.equals(buf)) {
    let i = 0;
    while (i < buf.length && i < again.length && buf[i] === again[i]) i++;
    fail(`protobuf: not the canonical encoding of what it decodes to (an unknown field, a field out of order, a non-minimal varint or invalid UTF-8): ${buf.length} bytes, ${again.length} when encoded again, first difference at byte ${i}`);
  }
  const obj = ExportTraceServiceRequest.toObject(msg, { longs: String, bytes: String, arrays: true });
  return mapIds(obj, '$', checkedHex, nonFinite);
}

/* google.rpc.Status { code = 1, message = 2 } */
function rpcStatus(code, message) {
  return Buffer.from(pb.Writer.create().uint32(8).int32(code).uint32(18).string(message).finish());
}

const state = { requests: [], spans: [], errors: [], held: [], plan: [], dflt: { ok: true } };
/* across resets: what this receiver decoded in all (for the test's summary) */
const totals = { requests: 0, spans: 0, errors: 0 };

function record(req, idx, decoded, status) {
  state.requests[idx].status = status;
  if (!decoded || status < 200 || status >= 300) return;
  totals.spans += state.requests[idx].spans;
  for (const rs of decoded.resourceSpans || [])
    for (const ss of rs.scopeSpans || [])
      for (const span of ss.spans || [])
        state.spans.push({ req: idx, resource: rs.resource || {}, scope: ss.scope || {}, span });
}

function answer(res, req, idx, decoded, action) {
  if (action.hang) {
    state.held.push({ res, req, idx, decoded });
    return;
  }
  if (action.drop) {
    record(req, idx, decoded, 0);
    req.socket.destroy();
    return;
  }
  if (action.redirect) {
    record(req, idx, decoded, 307);
    res.writeHead(307, { Location: action.redirect, 'Content-Length': '0' });
    res.end();
    return;
  }
  const proto = state.requests[idx].protobuf;
  if (action.status && (action.status < 200 || action.status >= 300)) {
    const headers = { 'Content-Type': proto ? 'application/x-protobuf' : 'application/json' };
    if (action.retryAfter !== undefined) headers['Retry-After'] = String(action.retryAfter);
    record(req, idx, decoded, action.status);
    res.writeHead(action.status, headers);
    const message = `test receiver answers ${action.status}`;
    res.end(proto ? rpcStatus(14, message) : JSON.stringify({ code: 14, message }));
    return;
  }
  record(req, idx, decoded, 200);
  const body = action.partial ? { partialSuccess: action.partial } : {};
  const bytes = proto
    ? Buffer.from(ExportTraceServiceResponse.encode(ExportTraceServiceResponse.fromObject(body)).finish())
    : Buffer.from(JSON.stringify(body));
  const headers = { 'Content-Type': proto ? 'application/x-protobuf' : 'application/json' };
  if (action.close) headers.Connection = 'close';
  if (!action.chunked) headers['Content-Length'] = String(bytes.length);
  res.writeHead(200, headers);
  if (action.chunked) {
    // Node frames writes without a Content-Length as chunks: one per byte
    for (let i = 0; i < bytes.length; i++) res.write(bytes.subarray(i, i + 1));
    res.end();
  } else {
    res.end(bytes);
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  let body = await readBody(req);
  const wireBytes = body.length;
  const encoding = req.headers['content-encoding'] || '';
  let inflateError = null;
  if (/^gzip$/i.test(encoding)) {
    try {
      body = zlib.gunzipSync(body);
    } catch (e) {
      inflateError = e.message;
    }
  }
  const url = req.url.split('?')[0];
  if (req.method === 'POST' && (url === '/v1/traces' || url === '/moved/v1/traces')) {
    const idx = state.requests.length;
    const entry = {
      i: idx, conn: req.socket.tbConn, path: url, encoding, wireBytes, t_ms: Number(process.hrtime.bigint() / 1000000n), bytes: body.length,
      contentType: req.headers['content-type'] || '', userAgent: req.headers['user-agent'] || '',
      headers: req.headers, spans: 0, status: 0,
    };
    state.requests.push(entry);
    let decoded = null;
    try {
      entry.protobuf = /^application\/x-protobuf\s*(;|$)/i.test(entry.contentType);
      if (inflateError) fail(`Content-Encoding ${encoding}: ${inflateError}`);
      if (encoding && !/^gzip$/i.test(encoding)) fail(`Content-Encoding "${encoding}" is not gzip`);
      if (!entry.protobuf && !/^application\/json\s*(;|$)/i.test(entry.contentType))
        fail(`Content-Type "${entry.contentType}" is neither application/json nor application/x-protobuf`);
      decoded = entry.protobuf ? decodeProtobuf(body) : decode(body.toString('utf8'));
      for (const rs of decoded.resourceSpans || [])
        for (const ss of rs.scopeSpans || []) entry.spans += (ss.spans || []).length;
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      state.errors.push({ req: idx, error: e.message, body: entry.protobuf ? body.toString('base64').slice(0, 2000) : body.toString('utf8').slice(0, 2000) });
      totals.errors++;
      entry.status = 400;
      res.writeHead(400, { 'Content-Type': entry.protobuf ? 'application/x-protobuf' : 'application/json' });
      res.end(entry.protobuf ? rpcStatus(3, e.message) : JSON.stringify({ code: 3, message: e.message }));
      return;
    }
    totals.requests++;
    if (url === '/moved/v1/traces') answer(res, req, idx, decoded, { ok: true });
    else answer(res, req, idx, decoded, state.plan.length ? state.plan.shift() : state.dflt);
    return;
  }
  if (req.method === 'GET' && url === '/received') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({
      decoder: DECODER, requests: state.requests, spans: state.spans, errors: state.errors,
      held: state.held.length, totals,
    }));
    return;
  }
  if (req.method === 'POST' && url === '/control') {
    let c;
    try {
      c = JSON.parse(body.toString('utf8') || '{}');
    } catch (e) {
      res.writeHead(400).end();
      return;
    }
    if (c.reset) Object.assign(state, { requests: [], spans: [], errors: [], plan: [], dflt: { ok: true } });
    if (c.plan) state.plan = c.plan.slice();
    if (c.default) state.dflt = c.default;
    if (c.closeIdle) server.closeIdleConnections();
    if (c.release) {
      const held = state.held;
      state.held = [];
      for (const h of held)
        if (!h.res.destroyed) answer(h.res, h.req, h.idx, h.decoded, state.dflt.hang ? { ok: true } : state.dflt);
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{}');
    if (c.quit) {
      for (const h of state.held) h.res.destroy();
      server.close();
      setImmediate(() => process.exit(0));
    }
    return;
  }
  res.writeHead(404).end();
});

server.keepAliveTimeout = 60000;
let conns = 0;
server.on('connection', (sock) => { sock.tbConn = ++conns; });
// Started by otlp_test through popen: never outlive it. When the test dies before its "quit",
// this process is handed to another parent; it notices within half a second and exits.
const parent = process.ppid;
setInterval(() => { if (process.ppid !== parent) process.exit(3); }, 500).unref();
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port, decoder: DECODER }) + '\n');
});
