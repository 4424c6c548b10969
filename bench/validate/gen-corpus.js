#!/usr/bin/env node
// Generates the shared document corpus of the validate benchmark, deterministically (fixed seed).
//
//   node gen-corpus.js --schemas DIR --out FILE [--count N] [--seed S] [--invalid FRACTION]
//
// FILE is one JSON array of {schema, valid, doc, text}:
//   schema  event name, e.g. "user.registered.v1" (schemas/events/<schema>.json)
//   valid   what the generator intended: true, or false for a deliberately broken document
//   doc     the event payload
//   text    JSON.stringify(doc): the bytes both "parse+validate" benchmarks parse
//   broken  (invalid documents only) what was broken and where, e.g. "pattern at /players/1"
// Both bench_validate (C) and ajv.js read this file, so both validators do the same work.
// Every schema in schemas/events except envelope.json must have a generator below: the script
// fails on a schema it does not know, so a new event schema gets into the benchmark.
'use strict';

const fs = require('fs');
const path = require('path');

function parseArgs(argv) {
  const o = { count: 4000, seed: 20261124, invalid: 0.1 };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--schemas') o.schemas = v();
    else if (a === '--out') o.out = v();
    else if (a === '--count') o.count = parseInt(v(), 10);
    else if (a === '--seed') o.seed = parseInt(v(), 10);
    else if (a === '--invalid') o.invalid = parseFloat(v());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.schemas || !o.out) throw new Error('usage: gen-corpus.js --schemas DIR --out FILE [--count N] [--seed S]');
  return o;
}

// ---- deterministic PRNG (mulberry32) ----
function prng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
    hex: (n) => {
      let out = '';
      for (let i = 0; i < n; i++) out += '0123456789abcdef'[Math.floor(next() * 16)];
      return out;
    },
  };
  return r;
}

// ---- realistic values ----
const FIRST = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy',
  'mallory', 'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'zoe',
  'jose', 'chloe', 'bjorn', 'yuki', 'amara', 'lena', 'mateo', 'noor', 'priya', 'tomasz'];
const LAST = ['smith', 'jones', 'garcia', 'muller', 'rossi', 'dubois', 'tanaka', 'kowalski',
  'nguyen', 'silva', 'johansson', 'okafor', 'schmidt', 'martin', 'haddad', 'novak'];
const DISPLAY = ['Alice Smith', 'Bob', 'Carol J.', 'Dave the Brave', 'Erin O\'Neil', 'Frank',
  'Grace Hopper', 'Heidi K', 'José Müller', 'Chloë Dubois', 'Björn Johansson', '山田 由紀',
  'Amara Okafor', 'Łukasz Nowak', 'Priya Patel', 'Noor Haddad', 'Tomasz', 'Zoë', 'Mateo Silva',
  'Lena Schmidt 🎲'];
const DOMAINS = ['example.com', 'mail.example.org', 'tablium.dev', 'gmail.com', 'proton.me',
  'outlook.com', 'web.de', 'yahoo.co.jp'];
const LOCALES = ['en', 'en-GB', 'en-US', 'de-DE', 'fr-FR', 'es-ES', 'it', 'pl-PL', 'ja-JP', 'pt-BR'];
const COUNTRIES = ['GB', 'US', 'DE', 'FR', 'ES', 'IT', 'PL', 'JP', 'BR', 'NG', 'IN', 'SE'];
const CURRENCIES = ['CHP', 'CHP', 'CHP', 'EUR', 'USD', 'GBP'];
const GAME_TYPES = ['chess', 'checkers', 'tictactoe', 'connect4'];
const FILES = 'abcdefgh';
const BIOS = [
  'Chess enthusiast. Sicilian Defence forever.',
  'Weekend checkers player, weekday accountant.',
  'I play connect4 against my kids and lose.',
  'Rated 1850 on a good day. Coffee first, then openings; endgames after lunch. ' +
    'Looking for a club in the area, preferably one that meets on Thursdays.',
  'Ich spiele gerne Schach und Dame. Grüße aus München!',
  '',
];
const ACHIEVEMENTS = [
  ['first_win', 'First win', 10], ['ten_wins', 'Ten wins', 50], ['streak.5', 'Five in a row', 100],
  ['grandmaster', 'Grandmaster', 5000], ['early-bird', 'Early bird', 20],
  ['marathon', 'Played a 4 hour game', 250], ['comeback', 'Won from a lost position', 500],
  ['social_butterfly', 'Played 50 different opponents', 300], ['high.roller', 'High roller', 1000],
];

function uuid(r) {
  // v4 layout; a few upper-case ones (the pattern allows A-F)
  const u = `${r.hex(8)}-${r.hex(4)}-4${r.hex(3)}-${'89ab'[r.int(0, 3)]}${r.hex(3)}-${r.hex(12)}`;
  return r.chance(0.05) ? u.toUpperCase() : u;
}

const T0 = Date.UTC(2026, 10, 24, 10, 0, 0);
function timestamp(r) {
  const d = new Date(T0 + r.int(0, 90 * 24 * 3600) * 1000 + r.int(0, 999));
  const iso = d.toISOString(); // 2026-11-24T10:00:00.123Z
  const k = r.int(0, 3);
  if (k === 0) return iso.replace(/\.\d{3}Z$/, 'Z');
  if (k === 1) return iso.replace(/Z$/, '+00:00');
  return iso;
}

function username(r) {
  const f = r.pick(FIRST);
  const k = r.int(0, 3);
  if (k === 0) return f;
  if (k === 1) return `${f}_${r.int(1, 9999)}`;
  if (k === 2) return `${f}.${r.pick(LAST)}`;
  return `${f[0].toUpperCase()}${f.slice(1)}-${r.pick(LAST)}${r.int(10, 99)}`;
}

function email(r) {
  return `${r.pick(FIRST)}.${r.pick(LAST)}${r.chance(0.5) ? r.int(1, 999) : ''}@${r.pick(DOMAINS)}`;
}

function square(r) {
  return `${FILES[r.int(0, 7)]}${r.int(1, 8)}`;
}

function players(r, lo, hi) {
  const n = r.int(lo, hi);
  const out = [];
  for (let i = 0; i < n; i++) out.push(uuid(r)); // random: unique in practice
  return out;
}

function amount(r) {
  const k = r.int(0, 3);
  if (k === 0) return r.int(1, 100);
  if (k === 1) return r.int(100, 100000);
  if (k === 2) return r.int(100000, 100000000);
  return r.int(1, 1e9) * 1000;
}

// ---- one generator per event schema ----
const GEN = {
  'user.registered.v1': (r) => {
    const d = { userId: uuid(r), email: email(r), username: username(r) };
    if (r.chance(0.6)) d.displayName = r.pick(DISPLAY);
    d.registeredAt = timestamp(r);
    return d;
  },
  'user.registered.v2': (r) => ({
    userId: uuid(r),
    email: email(r),
    username: username(r),
    displayName: r.pick(DISPLAY),
    locale: r.pick(LOCALES),
    marketingOptIn: r.chance(0.3),
    registeredAt: timestamp(r),
  }),
  'user.profile.updated.v1': (r) => {
    const changes = {};
    const keys = ['displayName', 'avatarUrl', 'bio', 'country'];
    const n = r.int(1, 3);
    while (Object.keys(changes).length < n) {
      const k = r.pick(keys);
      if (k === 'displayName') changes.displayName = r.pick(DISPLAY);
      else if (k === 'avatarUrl')
        changes.avatarUrl = r.chance(0.2) ? null : `https://cdn.tablium.dev/avatars/${uuid(r)}.png?v=${r.int(1, 40)}`;
      else if (k === 'bio') changes.bio = r.pick(BIOS);
      else changes.country = r.pick(COUNTRIES);
    }
    return { userId: uuid(r), changes, updatedAt: timestamp(r) };
  },
  'user.achievements.earned.v1': (r) => {
    const n = r.int(1, 4);
    const a = [];
    for (let i = 0; i < n; i++) {
      const [id, name, points] = r.pick(ACHIEVEMENTS);
      a.push({ id, name, points });
    }
    return { userId: uuid(r), achievements: a, earnedAt: timestamp(r) };
  },
  'game.created.v1': (r) => {
    const p = players(r, 1, 4);
    const d = {
      gameId: uuid(r),
      gameType: r.pick(GAME_TYPES),
      createdBy: p[0],
      players: p,
      settings: { timeControlSeconds: r.pick([60, 180, 300, 600, 900, 1800, 86400]), rated: r.chance(0.7) },
    };
    if (r.chance(0.4)) d.stake = { amount: amount(r), currency: r.pick(CURRENCIES) };
    d.createdAt = timestamp(r);
    return d;
  },
  'game.started.v1': (r) => {
    const p = players(r, 2, 4);
    return { gameId: uuid(r), players: p, firstTurn: r.pick(p), startedAt: timestamp(r) };
  },
  'game.move.made.v1': (r) => {
    const from = square(r);
    const to = square(r);
    const move = { notation: r.chance(0.5) ? `${from}${to}` : r.pick(['Nf3', 'e4', 'O-O', 'Qxd7+', 'exd8=Q#', 'c5']) };
    if (r.chance(0.6)) {
      move.from = from;
      move.to = to;
    }
    const d = { gameId: uuid(r), playerId: uuid(r), moveNumber: r.int(1, 180), move };
    if (r.chance(0.7)) d.stateVersion = r.int(0, 400);
    d.madeAt = timestamp(r);
    return d;
  },
  'game.completed.v1': (r) => {
    const outcome = r.pick(['win', 'win', 'win', 'draw', 'abandoned', 'timeout']);
    const p = players(r, 2, 4);
    const scores = p.map((id) => ({ playerId: id, score: r.int(-50, 3000) }));
    return {
      gameId: uuid(r),
      outcome,
      winnerId: outcome === 'draw' ? null : r.pick(p),
      scores,
      durationMs: r.int(5000, 4 * 3600 * 1000),
      completedAt: timestamp(r),
    };
  },
  'wallet.created.v1': (r) => ({
    walletId: uuid(r), userId: uuid(r), currency: r.pick(CURRENCIES), createdAt: timestamp(r),
  }),
  'wallet.transaction.created.v1': (r) => {
    const d = {
      transactionId: uuid(r),
      walletId: uuid(r),
      userId: uuid(r),
      type: r.chance(0.5) ? 'credit' : 'debit',
      amount: amount(r),
      currency: r.pick(CURRENCIES),
      balanceAfter: amount(r),
    };
    if (r.chance(0.6)) d.reference = r.pick([`game:${uuid(r)}`, `topup:${r.hex(16)}`, 'Weekly bonus', `payout #${r.int(1000, 99999)}`]);
    if (r.chance(0.5)) d.idempotencyKey = `${r.hex(8)}-${r.int(1, 1e6)}`;
    d.createdAt = timestamp(r);
    return d;
  },
  'wallet.balance.updated.v1': (r) => {
    const d = {
      walletId: uuid(r),
      userId: uuid(r),
      currency: r.pick(CURRENCIES),
      previousBalance: amount(r),
      balance: amount(r),
    };
    if (r.chance(0.8)) d.transactionId = uuid(r);
    d.updatedAt = timestamp(r);
    return d;
  },
};

// Relative frequency of each event in the stream (moves dominate, like in production).
const WEIGHT = {
  'game.move.made.v1': 30,
  'wallet.transaction.created.v1': 12,
  'wallet.balance.updated.v1': 12,
  'game.created.v1': 7,
  'game.started.v1': 7,
  'game.completed.v1': 7,
  'user.profile.updated.v1': 6,
  'user.achievements.earned.v1': 6,
  'user.registered.v1': 4,
  'user.registered.v2': 5,
  'wallet.created.v1': 4,
};

// ---- schema walking, to break documents on purpose ----
function makeResolver(schemasRoot) {
  const byId = new Map();
  const load = (file) => {
    const s = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (s.$id) byId.set(s.$id, s);
    return s;
  };
  for (const dir of ['common', 'events']) {
    const d = path.join(schemasRoot, dir);
    for (const f of fs.readdirSync(d).sort()) if (f.endsWith('.json')) load(path.join(d, f));
  }
  // resolve {"$ref": "../common/types.json#/$defs/x"} relative to the base $id
  const resolve = (schema, base) => {
    let s = schema;
    for (let guard = 0; s && s.$ref && guard < 16; guard++) {
      const url = new URL(s.$ref, base);
      const doc = byId.get(url.origin + url.pathname);
      if (!doc) throw new Error(`unresolved $ref ${s.$ref} from ${base}`);
      let t = doc;
      for (const part of decodeURIComponent(url.hash.replace(/^#/, '')).split('/').filter(Boolean))
        t = t[part.replace(/~1/g, '/').replace(/~0/g, '~')];
      // keep sibling keywords of the $ref
      const { $ref, ...rest } = s;
      s = { ...t, ...rest };
      base = url.origin + url.pathname;
    }
    return [s, base];
  };
  return { byId, resolve };
}

// Collects every way to break `doc` at this location: [{kind, where, apply(root)}].
function candidates(schema, base, value, ptr, setv, resolver, out) {
  let s;
  [s, base] = resolver.resolve(schema, base);
  const merged = { ...s };
  for (const sub of s.allOf || []) {
    const [t] = resolver.resolve(sub, base);
    for (const k of Object.keys(t)) if (!(k in merged)) merged[k] = t[k];
  }
  s = merged;
  const types = s.type === undefined ? [] : Array.isArray(s.type) ? s.type : [s.type];
  if (types.length && ptr !== '') {
    // a value of a type the schema does not allow
    const wrong = types.includes('string') ? 12345 : types.includes('integer') ? String(value) : 'oops';
    const w = types.includes('object') ? ['not', 'an', 'object'] : types.includes('array') ? { not: 'an array' } :
      types.includes('boolean') ? 'true' : wrong;
    out.push({ kind: 'type', where: ptr, apply: () => setv(w) });
  }
  if (typeof value === 'string' && s.pattern) {
    out.push({
      kind: 'pattern', where: ptr,
      apply: (r) => {
        const i = r.int(0, value.length - 1);
        setv(value.slice(0, i) + r.pick(['#', ' ', '!', '?']) + value.slice(i + 1));
      },
    });
  }
  if (typeof value === 'string' && s.enum) {
    out.push({ kind: 'enum', where: ptr, apply: () => setv(value.toUpperCase() + 'x') });
  }
  if (typeof value === 'number' && (s.minimum !== undefined || s.exclusiveMinimum !== undefined)) {
    out.push({ kind: 'minimum', where: ptr, apply: () => setv(-1 - value) });
  }
  if (typeof value === 'number' && s.maximum !== undefined && s.maximum < 1e6) {
    out.push({ kind: 'maximum', where: ptr, apply: () => setv(s.maximum + 1 + value) });
  }
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const k of s.required || [])
      if (k in value) out.push({ kind: 'required', where: `${ptr}/${k}`, apply: () => { delete value[k]; } });
    if (s.additionalProperties === false)
      out.push({
        kind: 'additionalProperties', where: ptr,
        apply: (r) => { value[r.pick(['extra', 'userID', 'debug', 'timestamp_ms', 'comment'])] = r.pick([true, 'x', 7]); },
      });
    for (const [k, ps] of Object.entries(s.properties || {}))
      if (k in value) candidates(ps, base, value[k], `${ptr}/${k}`, (v) => { value[k] = v; }, resolver, out);
  }
  if (Array.isArray(value) && s.items) {
    value.forEach((item, i) =>
      candidates(s.items, base, item, `${ptr}/${i}`, (v) => { value[i] = v; }, resolver, out));
    if (s.uniqueItems && value.length >= 1 && (s.maxItems === undefined || value.length < s.maxItems))
      out.push({ kind: 'uniqueItems', where: ptr, apply: () => { value.push(value[0]); } });
  }
}

// The four kinds of the issue get most of the weight; enum/minimum/maximum/uniqueItems the rest.
const KIND_WEIGHT = { type: 4, required: 4, pattern: 4, additionalProperties: 4, enum: 1, minimum: 1, maximum: 1, uniqueItems: 1 };

function breakDoc(r, name, doc, resolver, schemasRoot) {
  const id = `https://schemas.tablium.dev/events/${name}.json`;
  const schema = resolver.byId.get(id);
  const cands = [];
  candidates(schema, id, doc, '', () => { throw new Error('cannot replace the root'); }, resolver, cands);
  const kinds = [...new Set(cands.map((c) => c.kind))];
  let total = 0;
  for (const k of kinds) total += KIND_WEIGHT[k] || 1;
  let x = r.next() * total;
  let kind = kinds[kinds.length - 1];
  for (const k of kinds) {
    x -= KIND_WEIGHT[k] || 1;
    if (x < 0) { kind = k; break; }
  }
  const c = r.pick(cands.filter((cc) => cc.kind === kind));
  c.apply(r);
  return `${c.kind} at ${c.where || '/'}`;
}

function main() {
  const o = parseArgs(process.argv);
  const resolver = makeResolver(o.schemas);
  const names = fs.readdirSync(path.join(o.schemas, 'events'))
    .filter((f) => f.endsWith('.json') && f !== 'envelope.json')
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
  const missing = names.filter((n) => !GEN[n]);
  if (missing.length)
    throw new Error(`no document generator for ${missing.join(', ')}: add one to bench/validate/gen-corpus.js`);
  const r = prng(o.seed);
  let wsum = 0;
  for (const n of names) wsum += WEIGHT[n] || 5;
  const corpus = [];
  for (let i = 0; i < o.count; i++) {
    let x = r.next() * wsum;
    let name = names[names.length - 1];
    for (const n of names) {
      x -= WEIGHT[n] || 5;
      if (x < 0) { name = n; break; }
    }
    const doc = GEN[name](r);
    const e = { schema: name, valid: true };
    if (r.chance(o.invalid)) {
      e.valid = false;
      e.broken = breakDoc(r, name, doc, resolver, o.schemas);
    }
    e.doc = doc;
    e.text = JSON.stringify(doc);
    corpus.push(e);
  }
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  const tmp = `${o.out}.tmp${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(corpus) + '\n');
  fs.renameSync(tmp, o.out);
}

try {
  main();
} catch (e) {
  process.stderr.write(`gen-corpus: ${e.message}\n`);
  process.exit(1);
}
