/**
 * `rlpkd bench deploy`: a policy bundle timed in a real browser. The bundle and the built demo page are
 * served from 127.0.0.1 (as `rlpkd demo` serves them), Chromium is driven headless through playwright-core
 * (the system's browser, never a downloaded one), the page runs one seeded image, then times every fixed
 * selection (deploy-timing.ts) with warm-up runs first: medians over the repeats of the level parts, the
 * head parts, the trunk and the policy's decision on the same image. The table against the cost model
 * and the per-session-run overhead are assembled by deploy-timing.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { serveBundle } from '../deploy/demo-server';
import { RlpkdError } from '../errors';
import { GraphBuilder } from '../onnx/graph-builder';
import { modelToBytes } from '../onnx/model-io';
import { DataType } from '../onnx/types';
import { Rng } from '../util/rng';
import { BUNDLE_META_FILE, type BundleMeta } from '../web/bundle-format';
import {
  deployTimingTable,
  fastestOfRounds,
  fixedSelections,
  sessionRunOverhead,
  type DeployTimingRow,
  type SelectionTiming,
  type SessionRunOverhead,
} from './deploy-timing';
import { median } from './stats';

/** Where Debian's `chromium` package puts the browser. */
export const SYSTEM_CHROMIUM = '/usr/bin/chromium';

/**
 * Flags that make headless Chromium offer its SwiftShader WebGPU adapter on a machine without a GPU
 * (notes/browser.md): correct, far too slow to time.
 */
export const SOFTWARE_WEBGPU_FLAGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--enable-unsafe-swiftshader',
];

/** How to time a bundle in the browser. */
export interface BrowserDeployBenchOptions {
  bundleDir: string;
  /** 'wasm' (default) or 'webgpu' (SwiftShader's software adapter where there is no GPU). */
  ep?: 'wasm' | 'webgpu';
  /** wasm threads (default 1). */
  threads?: number;
  /** Timed runs per selection (default 40). */
  repeats?: number;
  /** Untimed runs per selection first (default 5). */
  warmup?: number;
  /** The browser (default /usr/bin/chromium). */
  chromium?: string;
  /** The built page (default the package's dist/web-app). */
  appDir?: string;
  /** Rounds, each in a fresh browser (default 1); figures are the least of the rounds' medians. */
  rounds?: number;
  /** Called after each selection is timed. */
  onSelection?: (timing: SelectionTiming) => void;
}

/** What `benchBrowserDeploy` measures. */
export interface BrowserDeployBenchResult {
  bundle: string;
  input: { width: number; height: number };
  executionProvider: string;
  threads: number;
  repeats: number;
  warmup: number;
  rounds: number;
  browser: string;
  /** Per selection, the least over the rounds of each median. */
  timings: SelectionTiming[];
  rows: DeployTimingRow[];
  overhead?: SessionRunOverhead;
  /** Median ms of a session run of an identity graph on one value: the fixed time measured directly. */
  emptyRunMs: number;
  /** Median over the selections of their trunk times. */
  trunkMs: number;
  /** The policy's graph runs per image (one per level for a sequential policy): median over the selections. */
  policyMs: number;
  /** The whole decision per image (pooling the state + the policy's runs): median over the selections. */
  decisionMs: number;
}

/** The shape of what the page's `rlpkdDemo.timeSelection` resolves to. */
interface PageTiming {
  parts: number;
  head: number;
  trunk: number;
  policy: number;
  decision: number;
}

function readMeta(bundleDir: string): BundleMeta {
  const file = path.join(bundleDir, BUNDLE_META_FILE);
  if (!fs.existsSync(file)) {
    throw new RlpkdError(`'${bundleDir}' is not a policy bundle (no ${BUNDLE_META_FILE})`, {
      hint: 'pass the folder `rlpkd export-policy --run RUN --out DIR` wrote',
    });
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as BundleMeta;
}

async function loadPlaywright(): Promise<typeof import('playwright-core')> {
  try {
    return await import('playwright-core');
  } catch (err) {
    throw new RlpkdError('playwright-core is not installed (it drives the browser)', {
      hint: 'run `npm ci` in the rl-pyramidkd folder (playwright-core is a development dependency)',
      cause: err,
    });
  }
}

/** A seeded noise PNG at the bundle's input size (the timed parts do not depend on the content). */
async function seededImage(width: number, height: number): Promise<Buffer> {
  const rng = new Rng(15);
  const px = Buffer.alloc(width * height * 3);
  for (let i = 0; i < px.length; i++) px[i] = Math.floor(rng.next() * 256);
  return sharp(px, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** An identity graph on a [1, 1] tensor: a session run with no work. */
function identityGraph(): Uint8Array {
  const b = new GraphBuilder({ name: 'identity' });
  const x = b.input('x', DataType.FLOAT, [1, 1]);
  b.node('Identity', [x], {}, { outputs: ['y'] });
  b.output('y', DataType.FLOAT, [1, 1]);
  return modelToBytes(b.build());
}

/** One round's measurements (a fresh browser). */
interface RoundTimes {
  timings: SelectionTiming[];
  policyMs: number;
  decisionMs: number;
  emptyRunMs: number;
  executionProvider: string;
  browser: string;
}

/** One round: a fresh browser opens the page on the served bundle and times every fixed selection. */
async function timeRound(
  url: string,
  meta: BundleMeta,
  options: Required<Pick<BrowserDeployBenchOptions, 'ep' | 'threads' | 'repeats' | 'warmup' | 'chromium'>> &
    Pick<BrowserDeployBenchOptions, 'onSelection'>,
): Promise<RoundTimes> {
  const { ep, repeats, warmup } = options;
  const { chromium } = await loadPlaywright();
  const browser = await chromium.launch({
    executablePath: options.chromium,
    headless: true,
    args: ['--no-sandbox', ...(ep === 'webgpu' ? SOFTWARE_WEBGPU_FLAGS : [])],
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${url}?threads=${options.threads}${ep === 'webgpu' ? '&ep=webgpu' : ''}`);
    await page.waitForFunction(() => window.rlpkdDemo?.ready || window.rlpkdDemo?.error, undefined, {
      timeout: 600000,
    });
    const pageError = async (): Promise<void> => {
      const error = await page.evaluate(() => window.rlpkdDemo.error);
      if (error) {
        throw new RlpkdError(`the page reports: ${error}`, {
          hint: 'check the bundle with `rlpkd demo` (or export it again)',
        });
      }
    };
    await pageError();
    const { width, height } = meta.input;
    await page.setInputFiles('#file', {
      name: 'seeded-noise.png',
      mimeType: 'image/png',
      buffer: await seededImage(width, height),
    });
    await page.waitForFunction(() => window.rlpkdDemo.runs.length >= 1 || window.rlpkdDemo.error, undefined, {
      timeout: 600000,
    });
    await pageError();
    const time = (levels: string[], n: number): Promise<PageTiming> =>
      page.evaluate(([l, k]) => window.rlpkdDemo.timeSelection!(l, k), [levels, n] as [string[], number]);
    const timings: SelectionTiming[] = [];
    const policy: number[] = [];
    const decision: number[] = [];
    for (const levels of fixedSelections(meta)) {
      if (warmup > 0) await time(levels, warmup);
      const t = await time(levels, repeats);
      const timing = { levels, partsMs: t.parts, headMs: t.head, trunkMs: t.trunk };
      timings.push(timing);
      policy.push(t.policy);
      decision.push(t.decision);
      options.onSelection?.(timing);
    }
    const identity = Array.from(identityGraph());
    const emptyRunMs = await page.evaluate(([bytes, n]) => window.rlpkdDemo.timeGraph!(bytes, [1, 1], n), [
      identity,
      repeats,
    ] as [number[], number]);
    return {
      timings,
      policyMs: median(policy),
      decisionMs: median(decision),
      emptyRunMs,
      executionProvider: (await page.evaluate(() => window.rlpkdDemo.executionProvider)) ?? ep,
      browser: `Chromium ${browser.version()}`,
    };
  } finally {
    await browser.close();
  }
}

/**
 * Times the bundle's fixed selections in Chromium (see the module doc), `rounds` times, each in a fresh
 * browser; every figure is the least of the rounds' medians (shared cores slow a round, never speed it).
 */
export async function benchBrowserDeploy(
  options: BrowserDeployBenchOptions,
): Promise<BrowserDeployBenchResult> {
  const bundleDir = path.resolve(options.bundleDir);
  const meta = readMeta(bundleDir);
  const chromium = options.chromium ?? SYSTEM_CHROMIUM;
  if (!fs.existsSync(chromium)) {
    throw new RlpkdError(`no browser at ${chromium}`, {
      hint: "install Debian's chromium (`apt-get install chromium`) or pass --chromium <path>",
    });
  }
  const settings = {
    ep: options.ep ?? 'wasm',
    threads: options.threads ?? 1,
    repeats: options.repeats ?? 40,
    warmup: options.warmup ?? 5,
    chromium,
    ...(options.onSelection ? { onSelection: options.onSelection } : {}),
  };
  const rounds = options.rounds ?? 1;
  const server = await serveBundle({
    bundleDir,
    port: 0,
    ...(options.appDir !== undefined ? { appDir: options.appDir } : {}),
  });
  const measured: RoundTimes[] = [];
  try {
    for (let r = 0; r < rounds; r++) measured.push(await timeRound(server.url, meta, settings));
  } finally {
    await server.close();
  }
  const timings = fastestOfRounds(measured.map((m) => m.timings));
  const overhead = sessionRunOverhead(meta, timings);
  const least = (f: (m: RoundTimes) => number): number => Math.min(...measured.map(f));
  return {
    bundle: bundleDir,
    input: { width: meta.input.width, height: meta.input.height },
    executionProvider: measured[0].executionProvider,
    threads: settings.threads,
    repeats: settings.repeats,
    warmup: settings.warmup,
    rounds,
    browser: measured[0].browser,
    timings,
    rows: deployTimingTable(meta, timings),
    ...(overhead ? { overhead } : {}),
    emptyRunMs: least((m) => m.emptyRunMs),
    trunkMs: median(timings.map((t) => t.trunkMs)),
    policyMs: least((m) => m.policyMs),
    decisionMs: least((m) => m.decisionMs),
  };
}
