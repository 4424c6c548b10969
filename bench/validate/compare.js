#!/usr/bin/env node
// Checks that both validators reached the same verdict on every corpus document, and that the
// verdicts are the ones the corpus generator intended.
//
//   node compare.js CORPUS NAME_A VERDICTS_A NAME_B VERDICTS_B
//
// A verdicts file holds one '1' (valid) or '0' (invalid) per document, in corpus order.
// Exit status 1, with the offending documents listed, when the validators disagree or when both
// disagree with the generator's intent.
'use strict';

const fs = require('fs');

function main() {
  const [corpusPath, nameA, fileA, nameB, fileB] = process.argv.slice(2);
  if (!fileB) throw new Error('usage: compare.js CORPUS NAME_A VERDICTS_A NAME_B VERDICTS_B');
  const corpus = JSON.parse(fs.readFileSync(corpusPath, 'utf8'));
  const a = fs.readFileSync(fileA, 'utf8').trim();
  const b = fs.readFileSync(fileB, 'utf8').trim();
  const n = corpus.length;
  for (const [name, v] of [[nameA, a], [nameB, b]])
    if (v.length !== n || /[^01]/.test(v))
      throw new Error(`${name}: ${v.length} verdicts for ${n} documents`);

  const disagree = [];
  const unintended = [];
  let valid = 0;
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) disagree.push(i);
    else if ((a[i] === '1') !== corpus[i].valid) unintended.push(i);
    if (a[i] === '1') valid++;
  }
  const show = (i) => {
    const e = corpus[i];
    const t = e.text.length > 400 ? `${e.text.slice(0, 400)}...` : e.text;
    return `  #${i} ${e.schema}: ${nameA} ${a[i] === '1' ? 'valid' : 'INVALID'}, ` +
      `${nameB} ${b[i] === '1' ? 'valid' : 'INVALID'}, generator meant ` +
      `${e.valid ? 'valid' : `invalid (${e.broken})`}\n    ${t}`;
  };
  let bad = false;
  if (disagree.length) {
    bad = true;
    console.error(`verdicts: ${nameA} and ${nameB} DISAGREE on ${disagree.length} of ${n} documents:`);
    for (const i of disagree.slice(0, 20)) console.error(show(i));
    if (disagree.length > 20) console.error(`  ... and ${disagree.length - 20} more`);
  }
  if (unintended.length) {
    bad = true;
    console.error(`verdicts: both validators contradict the corpus generator on ${unintended.length} documents ` +
      '(bench/validate/gen-corpus.js bug?):');
    for (const i of unintended.slice(0, 20)) console.error(show(i));
  }
  if (bad) process.exit(1);
  console.log(`verdicts: ${nameA} and ${nameB} agree on all ${n} documents (${valid} valid, ${n - valid} invalid)`);
}

try {
  main();
} catch (e) {
  process.stderr.write(`compare.js: ${e.message}\n`);
  process.exit(1);
}
