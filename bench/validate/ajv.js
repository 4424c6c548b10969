#!/usr/bin/env node
// ajv side of the validate benchmark: documents per second of ajv on the shared corpus.
//
//   node ajv.js --schemas DIR --corpus FILE [--seconds S] [--warmup S] [--runs N]
//               [--verdicts FILE] [--results FILE] [--formats] [--by-schema] [--no-header]
//               [--only validate|parse+validate]
//
// Same protocol as bench_validate.c: every schema file under DIR is added with addSchema (so the
// events' relative $refs resolve against their https $id), each event schema is compiled once,
// then
//   validate        validate(doc) on documents parsed once, before timing;
//   parse+validate  validate(JSON.parse(text)) on the same documents' text;
// each: a warm-up, then `runs` timed runs of at least `seconds` each (whole passes over the
// corpus), best run reported. --verdicts writes one '1'/'0' per document (run.sh compares them
// with the C side's); --results writes "validate <docs/s>" and "parse+validate <docs/s>" lines.
// Options as our defaults: first error only, formats as annotations (--formats: asserted,
// with ajv-formats), no coercion, no removeAdditional, no useDefaults.
// --by-schema: also the validate figure of each event schema alone (shorter runs).
// --only MODE: measure one mode only (for profiling).
'use strict';

const fs = require('fs');
const path = require('path');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;

function parseArgs(argv) {
  const o = { seconds: 2, warmup: 1, runs: 3, formats: false, noHeader: false };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--schemas') o.schemas = v();
    else if (a === '--corpus') o.corpus = v();
    else if (a === '--seconds') o.seconds = parseFloat(v());
    else if (a === '--warmup') o.warmup = parseFloat(v());
    else if (a === '--runs') o.runs = parseInt(v(), 10);
    else if (a === '--verdicts') o.verdicts = v();
    else if (a === '--results') o.results = v();
    else if (a === '--formats') o.formats = true;
    else if (a === '--by-schema') o.bySchema = true;
    else if (a === '--no-header') o.noHeader = true;
    else if (a === '--only') {
      o.only = v();
      if (o.only !== 'validate' && o.only !== 'parse+validate') throw new Error('--only: validate or parse+validate');
    }
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.schemas || !o.corpus) throw new Error('usage: ajv.js --schemas DIR --corpus FILE [options]');
  if (!(o.runs >= 1) || !(o.seconds > 0) || !(o.warmup >= 0)) throw new Error('bad --runs/--seconds/--warmup');
  return o;
}

function schemaFiles(root) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json')) out.push(p);
    }
  };
  walk(root);
  return out;
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

// Runs whole passes for at least `seconds`; returns documents per second.
function timed(pass, n, seconds) {
  let docs = 0;
  const t0 = now();
  let el;
  do {
    pass();
    docs += n;
    el = now() - t0;
  } while (el < seconds);
  return docs / el;
}

function main() {
  const o = parseArgs(process.argv);
  const ajv = new Ajv2020({
    strict: false,
    allErrors: false,
    validateFormats: o.formats,
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
  });
  addFormats(ajv); // known formats; asserted only with --formats (validateFormats)
  const ids = new Map(); // event name -> $id
  for (const f of schemaFiles(o.schemas)) {
    const s = JSON.parse(fs.readFileSync(f, 'utf8'));
    if (!s.$id) throw new Error(`${f} has no $id`);
    ajv.addSchema(s);
    if (path.basename(path.dirname(f)) === 'events') ids.set(path.basename(f, '.json'), s.$id);
  }

  const corpus = JSON.parse(fs.readFileSync(o.corpus, 'utf8'));
  const N = corpus.length;
  if (!N) throw new Error('empty corpus');
  const compiled = new Map();
  const fns = new Array(N);
  const texts = new Array(N);
  const docs = new Array(N);
  const tc0 = now();
  for (let i = 0; i < N; i++) {
    const e = corpus[i];
    let fn = compiled.get(e.schema);
    if (!fn) {
      const id = ids.get(e.schema);
      if (!id) throw new Error(`corpus document ${i}: no schema ${e.schema} in ${o.schemas}/events`);
      fn = ajv.getSchema(id);
      compiled.set(e.schema, fn);
    }
    fns[i] = fn;
    texts[i] = e.text;
    docs[i] = JSON.parse(e.text); // pre-parsed, outside the timed loops
  }
  const compileMs = (now() - tc0) * 1e3;

  // verdicts, and the number of valid documents every pass must see
  let verdicts = '';
  let nvalid = 0;
  for (let i = 0; i < N; i++) {
    const ok = fns[i](docs[i]) === true;
    verdicts += ok ? '1' : '0';
    if (ok) nvalid++;
  }
  if (o.verdicts) fs.writeFileSync(o.verdicts, verdicts + '\n');

  const passValidate = () => {
    let v = 0;
    for (let i = 0; i < N; i++) if (fns[i](docs[i])) v++;
    if (v !== nvalid) throw new Error(`validate: ${v} valid documents in a pass, expected ${nvalid}`);
  };
  const passParse = () => {
    let v = 0;
    for (let i = 0; i < N; i++) if (fns[i](JSON.parse(texts[i]))) v++;
    if (v !== nvalid) throw new Error(`parse+validate: ${v} valid documents in a pass, expected ${nvalid}`);
  };

  const ajvVersion = require('ajv/package.json').version;
  const fmtVersion = require('ajv-formats/package.json').version;
  if (!o.noHeader) console.log(`ajv ${ajvVersion} (ajv-formats ${fmtVersion}, node ${process.version}): ${compiled.size} schemas ` +
    `compiled in ${compileMs.toFixed(0)} ms; ${N} docs, ${nvalid} valid; formats ${o.formats ? 'asserted' : 'annotation'}`);
  const results = [];
  for (const [name, pass] of [['validate', passValidate], ['parse+validate', passParse]]) {
    if (o.only && o.only !== name) continue;
    timed(pass, N, o.warmup);
    const runs = [];
    for (let r = 0; r < o.runs; r++) runs.push(timed(pass, N, o.seconds));
    const best = Math.max(...runs);
    results.push(`${name} ${best.toFixed(3)}`);
    console.log(`  ajv     ${name.padEnd(15)} ${Math.round(best).toString().padStart(9)} docs/s ` +
      `(${(1e9 / best).toFixed(0)} ns/doc; runs ${runs.map((x) => Math.round(x)).join(', ')})`);
  }
  if (o.bySchema) {
    for (const name of [...compiled.keys()].sort()) {
      const idx = [];
      for (let i = 0; i < N; i++) if (corpus[i].schema === name) idx.push(i);
      const sf = idx.map((i) => fns[i]);
      const sd = idx.map((i) => docs[i]);
      const sv = idx.filter((i) => verdicts[i] === '1').length;
      const pass = () => {
        let v = 0;
        for (let i = 0; i < sd.length; i++) if (sf[i](sd[i])) v++;
        if (v !== sv) throw new Error(`${name}: ${v} valid documents in a pass, expected ${sv}`);
      };
      timed(pass, sd.length, o.warmup / 4);
      let best = 0;
      for (let r = 0; r < o.runs; r++) best = Math.max(best, timed(pass, sd.length, o.seconds / 4));
      console.log(`    ajv     ${name.padEnd(30)} ${Math.round(best).toString().padStart(9)} docs/s ` +
        `(${(1e9 / best).toFixed(0).padStart(4)} ns/doc, ${sd.length} docs)`);
    }
  }
  if (o.results) fs.writeFileSync(o.results, results.join('\n') + '\n');
}

try {
  main();
} catch (e) {
  process.stderr.write(`ajv.js: ${e.stack || e.message}\n`);
  process.exit(1);
}
