/**
 * The offline, CPU-only install without a config key npm warns about (issue 11 item 13): package.json's
 * allowScripts denies onnxruntime-node's install script (its NuGet download), no project `.npmrc` carries
 * the old `onnxruntime-node-install` key, npm itself prints no "Unknown project config" warning here, and
 * `.ci/run` keeps the environment-variable guard for npm versions that ignore allowScripts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

describe('npm install configuration', () => {
  it('allowScripts denies onnxruntime-node and approves only what builds natively', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      allowScripts?: Record<string, boolean>;
    };
    // Denied: onnxruntime-node's script downloads from NuGet; msgpackr-extract (BullMQ's optional native
    // MessagePack speed-up) would compile or download a binary, and msgpackr falls back to plain JS.
    const denied = new Set(['onnxruntime-node', 'msgpackr-extract']);
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
    for (const [name, allowed] of Object.entries(pkg.allowScripts ?? {})) {
      expect({ name, allowed }).toEqual({ name, allowed: !denied.has(name) });
    }
  });

  it('has no .npmrc key npm warns about', () => {
    const npmrc = path.join(ROOT, '.npmrc');
    if (fs.existsSync(npmrc)) expect(fs.readFileSync(npmrc, 'utf8')).not.toMatch(/onnxruntime-node-install/);
    const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/Unknown project config/);
  });

  it('.ci/run also skips the CUDA download for npm versions without allowScripts', () => {
    expect(fs.readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8')).toMatch(
      /^export ONNXRUNTIME_NODE_INSTALL=skip$/m,
    );
  });
});
