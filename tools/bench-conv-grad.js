#!/usr/bin/env node
/**
 * Times the Conv gradient formulations (forward, dX, each dW method) on onnxruntime and prints a table.
 * Needs the compiled package: run `npm run build` first (RLPKD_DIST overrides where dist/ is).
 * Usage: node tools/bench-conv-grad.js [--batch 2] [--cin 128] [--cout 128] [--size 56] [--kernel 3]
 *        [--stride 1] [--runs 10] [--threads N] [--ep cpu|cuda] [--json]
 */
'use strict';
const path = require('node:path');

const dist = process.env.RLPKD_DIST || path.join(__dirname, '..', 'dist');
const { benchConvGrad } = require(path.join(dist, 'bench', 'conv-grad.js'));

function parseArgs(argv) {
  const opts = {};
  const keys = { batch: 'batch', cin: 'channelsIn', cout: 'channelsOut', size: 'size', kernel: 'kernel', stride: 'stride', runs: 'runs', threads: 'threads' };
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i].replace(/^--/, '');
    if (a === 'json') json = true;
    else if (a === 'ep') opts.executionProvider = argv[++i];
    else if (keys[a]) opts[keys[a]] = Number(argv[++i]);
    else throw new Error(`unknown option --${a}`);
  }
  return { opts, json };
}

async function main() {
  const { opts, json } = parseArgs(process.argv.slice(2));
  const r = await benchConvGrad(opts);
  if (json) {
    console.log(JSON.stringify(r));
    return;
  }
  const fmt = (t) => `${t.minMs.toFixed(1).padStart(7)} ms min ${t.medianMs.toFixed(1).padStart(7)} ms median`;
  console.log(`${r.layer} (threads: ${r.threads})`);
  console.log(`  forward Conv               ${fmt(r.forwardMs)}`);
  for (const [m, t] of Object.entries(r.inputGradMs)) {
    const agree = r.inputGradAgreement[m];
    console.log(`  dX ${m.padEnd(23)}${fmt(t)}   (rel. diff vs conv-transpose ${agree.toExponential(1)})`);
  }
  for (const [m, t] of Object.entries(r.weightGradMs)) {
    const agree = r.weightGradAgreement[m];
    console.log(`  dW ${m.padEnd(23)}${fmt(t)}   (rel. diff vs im2col ${agree.toExponential(1)})`);
  }
  console.log(`  the Conv rule uses: dX ${r.ruleChoice.inputGrad}, dW ${r.ruleChoice.weightGrad}`);
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
