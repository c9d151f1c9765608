#!/usr/bin/env node
'use strict';
// Seeded inputs for the gradient check: `grad-inputs.js MODEL BATCH SIZE OUT_DIR` writes images.npy
// (BATCH×3×SIZE×SIZE, normal) and one target per graph output with the output's shape (from a CPU run),
// then prints the `--input`/`--target` arguments for `rlpkd grad`.
const fs = require('node:fs');
const path = require('node:path');
const { createSession, createRng, writeNpy } = require('rl-pyramidkd');

async function main() {
  const [model, batchArg, sizeArg, out] = process.argv.slice(2);
  if (!out) throw new Error('usage: grad-inputs.js MODEL BATCH SIZE OUT_DIR');
  const batch = Number(batchArg);
  const size = Number(sizeArg);
  fs.mkdirSync(out, { recursive: true });
  const rng = createRng(`gpu-check-${batch}-${size}`);
  const images = {
    data: Float32Array.from({ length: batch * 3 * size * size }, () => rng.normal()),
    dims: [batch, 3, size, size],
  };
  const session = await createSession(model, { executionProvider: 'cpu' });
  const outputs = await session.run({ [session.inputNames[0]]: images });
  await session.release();
  const args = [`--input`, `${session.inputNames[0]}=${path.join(out, 'images.npy')}`];
  writeNpy(path.join(out, 'images.npy'), images);
  for (const [name, t] of Object.entries(outputs)) {
    const target = { data: Float32Array.from(t.data, () => rng.normal()), dims: t.dims };
    writeNpy(path.join(out, `target-${name}.npy`), target);
    args.push('--target', `${name}=${path.join(out, `target-${name}.npy`)}`);
  }
  process.stdout.write(`${args.join(' ')}\n`);
}

main().catch((err) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
