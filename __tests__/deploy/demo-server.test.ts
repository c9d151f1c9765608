/**
 * The demo server without a browser: the page, the app files and the run's bundle are served with the
 * cross-origin isolation headers, nothing outside those folders is, the bundle is exported once and
 * then reused, and a missing page build is one clear error.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { startDemo } from '../../src/deploy/demo-server';
import { tempDir } from '../distill/run-fixtures';
import { tinyDeployRun } from './tiny-deploy-run';

jest.setTimeout(240000);

/** GET without URL normalization (so `..` reaches the server as sent). */
function get(
  url: string,
  rawPath: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    http
      .get({ hostname, port, path: rawPath }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

describe('startDemo', () => {
  it('serves page, app and bundle with COOP/COEP, nothing else, and reuses an up-to-date bundle', async () => {
    const dir = tempDir('demo-server');
    const run = await tinyDeployRun(dir, 'deploy');
    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'index.html'), '<!doctype html><title>demo</title>');
    fs.writeFileSync(path.join(app, 'demo.js'), 'export {};');
    const first = await startDemo({ run, port: 0, appDir: app });
    try {
      expect(first.exported).toBe(true);
      expect(first.bundleDir).toBe(path.join(run, 'policy-bundle'));
      const page = await get(first.url, '/');
      expect(page.status).toBe(200);
      expect(page.headers['cross-origin-opener-policy']).toBe('same-origin');
      expect(page.headers['cross-origin-embedder-policy']).toBe('require-corp');
      expect(page.headers['content-type']).toMatch(/text\/html/);
      expect((await get(first.url, '/app/demo.js')).headers['content-type']).toMatch(/text\/javascript/);
      const meta = await get(first.url, '/bundle/meta.json');
      expect(JSON.parse(meta.body).levels.length).toBe(4);
      const policy = await get(first.url, '/bundle/policy.onnx');
      expect(policy.headers['content-type']).toBe('application/octet-stream');
      expect((await get(first.url, '/bundle/../config.yaml')).status).toBe(404);
      expect((await get(first.url, '/app/%2e%2e/%2e%2e/config.yaml')).status).toBe(404);
      expect((await get(first.url, '/elsewhere')).status).toBe(404);
    } finally {
      await first.close();
    }
    const second = await startDemo({ run, port: 0, appDir: app });
    expect(second.exported).toBe(false);
    await second.close();
    await expect(startDemo({ run, port: 0, appDir: path.join(dir, 'nothing') })).rejects.toThrow(
      /the demo page is not built/,
    );
  });
});
