#!/usr/bin/env node
'use strict';
// `compare-grads.js REFERENCE_DIR DIR BOUND LABEL`: relative L2 error ||g − g_ref|| / ||g_ref|| of every
// parameter gradient `rlpkd grad` wrote to DIR against REFERENCE_DIR (same parameters required). Prints
// one line and a JSON summary; exits 1 when a parameter exceeds BOUND or the sets differ.
const fs = require('node:fs');
const path = require('node:path');
const { readNpy } = require('rl-pyramidkd');

function index(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
}

const [refDir, dir, boundArg, label = path.basename(dir)] = process.argv.slice(2);
if (!boundArg) {
  process.stderr.write('usage: compare-grads.js REFERENCE_DIR DIR BOUND [LABEL]\n');
  process.exit(2);
}
const bound = Number(boundArg);
const ref = index(refDir);
const got = index(dir);
const missing = Object.keys(ref).filter((k) => !(k in got));
const extra = Object.keys(got).filter((k) => !(k in ref));
const errors = [];
for (const [name, file] of Object.entries(ref)) {
  if (!(name in got)) continue;
  const a = readNpy(path.join(refDir, file)).data;
  const b = readNpy(path.join(dir, got[name])).data;
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = b[i] - a[i];
    num += d * d;
    den += a[i] * a[i];
  }
  errors.push({ name, relL2: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num) });
}
errors.sort((x, y) => y.relL2 - x.relL2);
const over = errors.filter((e) => !(e.relL2 <= bound));
const worst = errors[0] ?? { name: '-', relL2: NaN };
const ok = over.length === 0 && missing.length === 0 && extra.length === 0 && errors.length > 0;
process.stdout.write(
  `${label}: ${errors.length} parameters, worst relative L2 ${worst.relL2.toExponential(2)} (${worst.name}), ` +
    `${over.length} over ${bound}${missing.length || extra.length ? `, ${missing.length} missing, ${extra.length} extra` : ''}` +
    ` → ${ok ? 'PASS' : 'FAIL'}\n`,
);
process.stdout.write(
  `${JSON.stringify({ label, ok, bound, parameters: errors.length, worst: errors.slice(0, 3), missing, extra })}\n`,
);
process.exit(ok ? 0 : 1);
