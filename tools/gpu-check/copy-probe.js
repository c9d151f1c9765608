#!/usr/bin/env node
'use strict';
// `copy-probe.js EP MB`: how fast onnxruntime-node moves a float32 tensor of MB megabytes to the device
// and back on EP (a graph that only passes its input through). onnxruntime-node binds CPU buffers only
// (no CUDA IO binding), so every input and output of a step makes this trip. Prints one JSON line:
// median ms per round trip and GB/s (bytes each way × 2 / time).
const { GraphBuilder, DataType, createSession } = require('rl-pyramidkd');

async function main() {
  const [ep, mbArg] = process.argv.slice(2);
  const mb = Number(mbArg);
  if (!ep || !(mb > 0)) throw new Error('usage: copy-probe.js EP MB');
  const n = Math.round((mb * 1e6) / 4);
  const b = new GraphBuilder({ name: 'copy', opset: 17 });
  const x = b.input('x', DataType.FLOAT, [n]);
  // Neg keeps one cheap node on the device (a bare Identity could be folded into no copy at all).
  b.output(b.op('Neg', [x]), DataType.FLOAT, [n]);
  const session = await createSession(b.build(), { executionProvider: ep });
  const feed = { x: { data: new Float32Array(n).fill(1), dims: [n] } };
  const times = [];
  for (let i = 0; i < 13; i++) {
    const t0 = process.hrtime.bigint();
    await session.run(feed);
    if (i >= 3) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await session.release();
  times.sort((p, q) => p - q);
  const ms = times[Math.floor(times.length / 2)];
  process.stdout.write(`${JSON.stringify({ ep, mb, medianMs: ms, gbPerS: (2 * n * 4) / (ms * 1e6) })}\n`);
}

main().catch((err) => {
  process.stderr.write(`error: ${err.message}\n`);
  process.exit(1);
});
