/**
 * `rlpkd demo`: serves the demo page (dist/web-app, built by `npm run build:web`) and a run's policy
 * bundle (exported on first use, reused while it matches the run's latest checkpoint) from one local
 * HTTP server, offline. Every response carries the cross-origin isolation headers (COOP same-origin,
 * COEP require-corp), so the page may use wasm threads.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { packageRoot } from '../config/load-config';
import { readRunCheckpoint } from '../distill/run-checkpoint';
import { RlpkdError } from '../errors';
import { openRunDir } from '../logging/run-dir';
import { BUNDLE_FORMAT_VERSION, BUNDLE_META_FILE, type BundleMeta } from '../web/bundle-format';
import { exportPolicy } from './export-policy';

/** How to serve the demo. */
export interface DemoOptions {
  run: string;
  /** TCP port on 127.0.0.1 (default 8080; 0 picks a free one). */
  port?: number;
  /** Bundle folder (default <run>/policy-bundle). */
  bundleDir?: string;
  /** The built page (default the package's dist/web-app). */
  appDir?: string;
}

/** A running demo server. */
export interface DemoServer {
  url: string;
  bundleDir: string;
  /** Whether the bundle was exported now (false: an up-to-date one was reused). */
  exported: boolean;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
};

/** The headers every response carries: cross-origin isolation (wasm threads) and no caching. */
export const DEMO_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** Where the built page is, checked. */
export function demoAppDir(dir = path.join(packageRoot(), 'dist', 'web-app')): string {
  if (!fs.existsSync(path.join(dir, 'index.html')) || !fs.existsSync(path.join(dir, 'demo.js'))) {
    throw new RlpkdError(`the demo page is not built (no index.html and demo.js in '${dir}')`, {
      hint: 'run `npm run build:web` (or `npm run build`) in the rl-pyramidkd folder',
    });
  }
  return dir;
}

/** The run's bundle: reused when it was exported from the run's latest checkpoint, else exported now. */
async function ensureBundle(run: string, dir: string): Promise<boolean> {
  const metaFile = path.join(dir, BUNDLE_META_FILE);
  if (fs.existsSync(metaFile)) {
    try {
      const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as BundleMeta;
      const latest = readRunCheckpoint(openRunDir(run), undefined, 'eval').state.label;
      if (meta.format === BUNDLE_FORMAT_VERSION && meta.source?.checkpoint === latest) return false;
    } catch {
      // unreadable: export it again
    }
  }
  await exportPolicy({ run, out: dir });
  return true;
}

/** The file under `root` a URL path names, or undefined (outside it, or missing). */
function fileUnder(root: string, urlPath: string): string | undefined {
  const file = path.resolve(root, `.${path.posix.normalize(`/${urlPath}`)}`);
  if (file !== root && !file.startsWith(root + path.sep)) return undefined;
  return fs.existsSync(file) && fs.statSync(file).isFile() ? file : undefined;
}

/** How to serve a bundle beside the built page (the demo's server without a run). */
export interface BundleServerOptions {
  /** The bundle folder (meta.json and its ONNX files). */
  bundleDir: string;
  /** The built page (default the package's dist/web-app). */
  appDir?: string;
  /** TCP port on 127.0.0.1 (default 8080; 0 picks a free one). */
  port?: number;
}

/** A running page + bundle server. */
export interface BundleServer {
  url: string;
  close(): Promise<void>;
}

/** Starts the demo server (see module doc). */
export async function startDemo(options: DemoOptions): Promise<DemoServer> {
  const bundleDir = path.resolve(options.bundleDir ?? path.join(options.run, 'policy-bundle'));
  const appDir = demoAppDir(options.appDir);
  const exported = await ensureBundle(options.run, bundleDir);
  const server = await serveBundle({
    bundleDir,
    appDir,
    ...(options.port !== undefined ? { port: options.port } : {}),
  });
  return { ...server, bundleDir, exported };
}

/**
 * Serves the built page at / (and /app/) and a bundle folder under /bundle/ on 127.0.0.1, with the
 * cross-origin isolation headers (the demo, and `rlpkd bench deploy` on an exported bundle).
 */
export async function serveBundle(options: BundleServerOptions): Promise<BundleServer> {
  const app = path.resolve(demoAppDir(options.appDir));
  const bundleDir = path.resolve(options.bundleDir);
  if (!fs.existsSync(path.join(bundleDir, BUNDLE_META_FILE))) {
    throw new RlpkdError(`'${bundleDir}' is not a policy bundle (no ${BUNDLE_META_FILE})`, {
      hint: 'pass the folder `rlpkd export-policy --run RUN --out DIR` wrote',
    });
  }
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    let file: string | undefined;
    if (urlPath === '/' || urlPath === '/index.html') file = path.join(app, 'index.html');
    else if (urlPath.startsWith('/app/')) file = fileUnder(app, urlPath.slice(5));
    else if (urlPath.startsWith('/bundle/')) file = fileUnder(bundleDir, urlPath.slice(8));
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { ...DEMO_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`not found: ${urlPath}\n`);
      return;
    }
    const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
    res.writeHead(200, { ...DEMO_HEADERS, 'Content-Type': type, 'Content-Length': fs.statSync(file).size });
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new RlpkdError(`the demo server cannot listen on port ${options.port ?? 8080}: ${err.message}`, {
          hint: 'pass another --port (0 picks a free one)',
          cause: err,
        }),
      ),
    );
    server.listen(options.port ?? 8080, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
