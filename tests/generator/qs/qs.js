// The independent side of tests/unit/test_deep_object.c: qs (the library Express and Stripe's
// Node client use) reads and writes the bracket form. One request per line on stdin:
//   parse <query>   -> the JSON qs.parse makes of it (every leaf a string)
//   stringify <json> -> qs.stringify of that value with indices (name[0]=...), as Stripe's
//                       clients write arrays
'use strict';
const qs = require('qs');
const readline = require('readline');
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const sp = line.indexOf(' ');
  const verb = line.slice(0, sp), arg = line.slice(sp + 1);
  if (verb === 'parse') {
    process.stdout.write(JSON.stringify(qs.parse(arg, { depth: 16, arrayLimit: 100 })) + '\n');
  } else {
    process.stdout.write(qs.stringify(JSON.parse(arg), { arrayFormat: 'indices' }) + '\n');
  }
});
