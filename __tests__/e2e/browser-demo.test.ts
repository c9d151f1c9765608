/**
 * The demo page in Debian's Chromium (playwright-core, never a downloaded browser; headless,
 * --no-sandbox): `rlpkd demo` serves a fresh export of a tiny deploy-state run with a detection head
 * (models.teacher_head, an untrained FCOS head), the page runs seeded images, and the levels it chooses,
 * the features it computes and the detections it decodes are compared with the Node runtime
 * (onnxruntime-node on the run's own student, policy and head): a decision may differ only where the
 * reference logit is within 1e-4 of the threshold (counted), features within 1e-4 relative (raw head
 * outputs 1e-3), detections in the same number (unless a candidate is within 1e-4
 * of the score threshold, counted) with boxes and scores within 1e-4 relative. Then the
 * same on WebGPU (SwiftShader's software adapter, notes/browser.md: correctness only), a bundle with a
 * missing file (a clear error on the page), and the timing table of fixed selections on wasm. Screenshots
 * go to $TMPDIR/rlpkd-e2e-screenshots/ (printed). Skips with a printed reason where /usr/bin/chromium is absent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { startDemo } from '../../src/deploy/demo-server';
import { Rng } from '../../src/util/rng';
import type { BundleMeta } from '../../src/web/bundle-format';
import {
  agreement,
  referenceInference,
  taskAgreement,
  type RuntimeResult,
} from '../helpers/adaptive-reference';
import { tinyDeployRun } from '../deploy/tiny-deploy-run';
import { tempDir } from '../distill/run-fixtures';

jest.setTimeout(15 * 60 * 1000);

const ROOT = path.resolve(__dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(os.tmpdir(), 'rlpkd-e2e-screenshots');
const WEBGPU_FLAGS = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
];

interface PageRun extends RuntimeResult {
  name: string;
  budget: number;
  input: number[];
  times: { trunk: number; state: number; policy: number; levels: Record<string, number>; total: number };
  macs: { used: number; total: number; saved: number };
}

/** Seeded 32×32 PNGs with a few bright rectangles on noise. */
async function writeImages(dir: string, n: number, size: number): Promise<string[]> {
  const rng = new Rng(21);
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(size * size * 3);
    for (let j = 0; j < px.length; j++) px[j] = Math.floor(rng.next() * 80);
    for (let r = 0; r < 2; r++) {
      const [x0, y0, w, h] = [0, 0, 0, 0].map(() => Math.floor(rng.next() * size * 0.6));
      const colour = [0, 1, 2].map(() => 128 + Math.floor(rng.next() * 128));
      for (let y = y0; y < Math.min(size, y0 + h + 2); y++)
        for (let x = x0; x < Math.min(size, x0 + w + 2); x++)
          for (let c = 0; c < 3; c++) px[(y * size + x) * 3 + c] = colour[c];
    }
    const file = path.join(dir, `image-${i}.png`);
    await sharp(px, { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toFile(file);
    files.push(file);
  }
  return files;
}

/** Starts `rlpkd demo` (the built CLI) on a free port and returns it with its URL. */
async function startCliDemo(run: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'rlpkd.js'), 'demo', '--run', run, '--port', '0'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /demo page: (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => reject(new Error(`rlpkd demo exited ${code}: ${out}`)));
  });
  return { child, url };
}

async function openDemo(browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(url);
  await page.waitForFunction(() => window.rlpkdDemo?.ready || window.rlpkdDemo?.error, undefined, {
    timeout: 300000,
  });
  return page;
}

async function runImages(page: Page, files: string[]): Promise<PageRun[]> {
  await page.setInputFiles('#file', files);
  await page.waitForFunction(
    (n) => window.rlpkdDemo.runs.length >= n || window.rlpkdDemo.error,
    files.length,
    {
      timeout: 600000,
    },
  );
  const error = await page.evaluate(() => window.rlpkdDemo.error);
  if (error) throw new Error(`the page reports: ${error}`);
  return (await page.evaluate(() => window.rlpkdDemo.runs)) as unknown as PageRun[];
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const haveChromium = fs.existsSync(CHROMIUM);
if (!haveChromium)
  process.stdout.write(`browser demo test skipped: ${CHROMIUM} is absent (apt-get install chromium)\n`);
const maybe = haveChromium ? describe : describe.skip;

maybe('the demo page in Chromium', () => {
  const dir = tempDir('browser-demo');
  let runDir = '';
  let meta: BundleMeta;
  let demo: { child: ChildProcess; url: string };
  let images: string[] = [];

  beforeAll(async () => {
    runDir = await tinyDeployRun(dir, 'deploy', {}, { detectionHead: true });
    demo = await startCliDemo(runDir);
    meta = JSON.parse(fs.readFileSync(path.join(runDir, 'policy-bundle', 'meta.json'), 'utf8')) as BundleMeta;
    images = await writeImages(dir, 6, meta.input.width);
    fs.mkdirSync(SHOTS, { recursive: true });
  });

  afterAll(() => {
    if (demo?.child.pid) process.kill(demo.child.pid, 'SIGTERM');
  });

  /** The runs compared with the Node runtime; checks and returns the agreement figures. */
  async function compare(
    runs: PageRun[],
  ): Promise<{ levels: ReturnType<typeof agreement>; task: ReturnType<typeof taskAgreement> }> {
    const inputs = new Float32Array(runs.flatMap((r) => r.input));
    expect(new Set(runs.map((r) => r.budget)).size).toBe(1);
    const refs = await referenceInference(runDir, meta, inputs, runs[0].budget, path.join(dir, 'head.onnx'));
    const a = agreement(runs, refs);
    const t = taskAgreement(runs, refs);
    expect(a.disagreements).toBe(0);
    expect(a.sameLevels + a.nearThreshold).toBe(runs.length);
    expect(a.maxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(t.disagreements + t.labelMismatches).toBe(0);
    expect(t.sameCount + t.nearThreshold).toBe(t.images);
    expect(t.detections).toBeGreaterThan(0);
    expect(t.maxBoxRelDiff).toBeLessThanOrEqual(1e-4);
    expect(t.maxScoreRelDiff).toBeLessThanOrEqual(1e-4);
    // The task output is the detections (1e-4 above); the raw logits before decoding pass three more
    // float32 convolutions than the features and are held to 1e-3 (the figure is printed).
    expect(t.maxRawRelDiff).toBeLessThanOrEqual(1e-3);
    return { levels: a, task: t };
  }

  it('wasm: the levels and features of the Node runtime, shown on the page; timing of fixed selections', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox'],
    });
    try {
      const page = await openDemo(browser, demo.url);
      expect(await page.evaluate(() => window.rlpkdDemo.error)).toBeNull();
      expect(await page.evaluate(() => self.crossOriginIsolated)).toBe(true);
      const runs = await runImages(page, images);
      const a = await compare(runs);
      process.stdout.write(
        `browser (wasm) vs Node: ${JSON.stringify(a.levels)}\n  detections: ${JSON.stringify(a.task)}\n`,
      );
      const last = runs[runs.length - 1];
      expect(await page.textContent('#image-caption')).toContain(`chosen levels: ${last.levels.join(', ')}`);
      const found = last.task!.output!.detections!;
      expect(await page.textContent('#task')).toContain(`${found.length} detection(s)`);
      expect(await page.locator('#detections tbody tr').count()).toBe(Math.min(found.length, 10)); // the best 10
      for (const d of last.decisions) {
        expect(await page.getAttribute(`tr[data-level="${d.level}"]`, 'class')).toBe(
          d.selected ? 'on' : 'off',
        );
      }
      await page.screenshot({ path: path.join(SHOTS, 'demo-wasm.png'), fullPage: true });
      process.stdout.write(`screenshot: ${path.join(SHOTS, 'demo-wasm.png')}\n`);
      // Every level computed (a fixed selection): the detections of the finer levels too.
      const all = await openDemo(browser, `${demo.url}?levels=${meta.levels.map((l) => l.name).join(',')}`);
      const [fixed] = await runImages(all, images.slice(-1));
      expect(fixed.levels).toEqual(meta.levels.map((l) => l.name));
      expect(await all.textContent('#task')).toContain(
        `${fixed.task!.output!.detections!.length} detection(s)`,
      );
      await all.screenshot({ path: path.join(SHOTS, 'demo-wasm-all-levels.png'), fullPage: true });
      process.stdout.write(`screenshot: ${path.join(SHOTS, 'demo-wasm-all-levels.png')}\n`);
      await all.close();
      const pagePolicyMs = median(runs.map((r) => r.times.policy));

      // Timing: fixed selections from all levels down to the coarsest alone, wasm on 1 thread.
      await page.close();
      const timed = await openDemo(browser, `${demo.url}?threads=1`);
      await runImages(timed, images.slice(0, 1));
      const threads = await timed.textContent('#runtime');
      const names = meta.levels.map((l) => l.name);
      const rows: string[] = [];
      for (let k = 0; k < names.length; k++) {
        const levels = names.slice(k);
        const t = await timed.evaluate(
          ([l, n]) => window.rlpkdDemo.timeSelection!(l as string[], n as number),
          [levels, 15] as const,
        );
        const macs = levels.reduce((n, l) => n + meta.levels.find((x) => x.name === l)!.macs, 0);
        const headMacs = meta
          .head!.parts.filter((p) => levels.includes(p.level))
          .reduce((n, p) => n + p.macs, 0);
        rows.push(
          `| ${levels.join('+')} | ${t.parts.toFixed(3)} | ${t.head.toFixed(3)} | ${t.trunk.toFixed(3)} | ${macs} | ${headMacs} | ${t.policy.toFixed(3)} |`,
        );
      }
      process.stdout.write(
        `wasm timing (${threads}):\n| levels | level parts ms | head parts ms | trunk ms | part MACs | head MACs | policy ms |\n${rows.join('\n')}\n` +
          `policy decision per image: median ${pagePolicyMs.toFixed(3)} ms over the first page's runs (first included)\n`,
      );
    } finally {
      await browser.close();
    }
  });

  it('webgpu (software adapter): the same levels and features, or a printed reason to skip', async () => {
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', ...WEBGPU_FLAGS],
    });
    try {
      const adapter = await (async () => {
        const page = await browser.newPage();
        await page.goto(demo.url);
        const ok = await page.evaluate(async () => {
          const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
          return gpu ? (await gpu.requestAdapter()) !== null : false;
        });
        await page.close();
        return ok;
      })();
      if (!adapter) {
        process.stdout.write('webgpu browser test skipped: Chromium offers no WebGPU adapter here\n');
        return;
      }
      const page = await openDemo(browser, `${demo.url}?ep=webgpu`);
      expect(await page.evaluate(() => window.rlpkdDemo.error)).toBeNull();
      expect(await page.evaluate(() => window.rlpkdDemo.executionProvider)).toBe('webgpu');
      const runs = await runImages(page, images.slice(0, 3));
      const a = await compare(runs);
      process.stdout.write(
        `browser (webgpu, SwiftShader) vs Node: ${JSON.stringify(a.levels)}\n  detections: ${JSON.stringify(a.task)}\n`,
      );
      await page.screenshot({ path: path.join(SHOTS, 'demo-webgpu.png'), fullPage: true });
      process.stdout.write(`screenshot: ${path.join(SHOTS, 'demo-webgpu.png')}\n`);
    } finally {
      await browser.close();
    }
  });

  it('a bundle with a missing file shows a clear error on the page', async () => {
    const broken = path.join(dir, 'broken-bundle');
    fs.cpSync(path.join(runDir, 'policy-bundle'), broken, { recursive: true });
    fs.rmSync(path.join(broken, meta.levels[0].file));
    const server = await startDemo({ run: runDir, port: 0, bundleDir: broken });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox'],
    });
    try {
      expect(server.exported).toBe(false);
      const page = await openDemo(browser, server.url);
      const error = await page.textContent('#error');
      expect(error).toMatch(/bundle file 'level-P2.onnx' is missing \(404/);
      expect(await page.isVisible('#error')).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'demo-missing-file.png') });
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
