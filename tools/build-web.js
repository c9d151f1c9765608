#!/usr/bin/env node
/**
 * `npm run build:web`: the browser runtime (src/web/index.ts → rlpkd-web.js, an ES module) and the demo
 * page (src/web/demo/) bundled with esbuild into dist/web-app/, with onnxruntime-web's wasm files beside
 * them (its bundled entry finds them next to the script) so the page works offline.
 */
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'dist', 'web-app');
/** onnxruntime-web's default entry runs the JSEP build (wasm + WebGPU). */
const ORT_FILES = ['ort-wasm-simd-threaded.jsep.wasm', 'ort-wasm-simd-threaded.jsep.mjs'];

function ortDist() {
  let dir = path.dirname(require.resolve('onnxruntime-web'));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return path.join(dir, 'dist');
}

async function main() {
  const tmp = `${OUT}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: {
      'rlpkd-web': path.join(ROOT, 'src', 'web', 'index.ts'),
      demo: path.join(ROOT, 'src', 'web', 'demo', 'demo-page.ts'),
    },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    logLevel: 'warning',
  });
  for (const f of ['index.html', 'demo.css'])
    fs.copyFileSync(path.join(ROOT, 'src', 'web', 'demo', f), path.join(tmp, f));
  for (const f of ORT_FILES) fs.copyFileSync(path.join(ortDist(), f), path.join(tmp, f));
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.renameSync(tmp, OUT);
  const bytes = fs.readdirSync(OUT).reduce((n, f) => n + fs.statSync(path.join(OUT, f)).size, 0);
  process.stdout.write(`built the browser runtime and demo page into ${path.relative(ROOT, OUT)} (${bytes} bytes)\n`);
}

main().catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exitCode = 1;
});
