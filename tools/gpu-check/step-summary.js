#!/usr/bin/env node
'use strict';
// `step-summary.js BENCH_JSON COPY_JSON PEAK_MIB`: one line per train step measured by `rlpkd bench
// train-step --json`: ms/step, peak GPU memory, and the host↔device copy share, estimated as the bytes
// the step moves across PCIe (teacher: images in, 4 FPN levels out; student fused step: images and
// teacher levels in, parameters and both AdamW moments in and out) at the bandwidth copy-probe.js
// measured, over the step time. An estimate: onnxruntime-node reports no copy time of its own.
const fs = require('node:fs');

const [benchFile, copyFile, peak] = process.argv.slice(2);
const bench = JSON.parse(fs.readFileSync(benchFile, 'utf8'));
const copy = JSON.parse(fs.readFileSync(copyFile, 'utf8').trim().split('\n').pop());
const { batch, size, trainableParameters: params, medianMs } = bench;
const fpnChannels = 256;
const levelsValues =
  [4, 8, 16, 32].reduce((sum, s) => sum + Math.ceil(size / s) ** 2, 0) * fpnChannels * batch;
const images = batch * 3 * size * size;
const floats = images + levelsValues + (images + levelsValues) + 2 * 3 * params;
const bytes = floats * 4;
const copyMs = bytes / (copy.gbPerS * 1e6);
const line = {
  ep: bench.executionProvider,
  batch,
  size,
  msPerStep: medianMs,
  peakGpuMemMiB: peak === '' || peak === undefined ? null : Number(peak),
  bytesPerStepMB: bytes / 1e6,
  copyMsEstimate: copyMs,
  copyShareEstimate: copyMs / medianMs,
};
process.stdout.write(
  `${line.ep} batch ${batch} ${size}²: ${medianMs.toFixed(1)} ms/step, peak GPU memory ${line.peakGpuMemMiB ?? '?'} MiB, ` +
    `${line.bytesPerStepMB.toFixed(0)} MB across PCIe ≈ ${copyMs.toFixed(1)} ms = ${(100 * line.copyShareEstimate).toFixed(0)}% of the step\n` +
    `${JSON.stringify(line)}\n`,
);
