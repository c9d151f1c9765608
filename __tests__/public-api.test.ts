/**
 * The package's public API (src/index.ts) is deliberate: named exports only, every name the README's
 * library example uses is there and defined, and internal helpers stay out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as api from '../src';

const ROOT = path.resolve(__dirname, '..');

test('src/index.ts names its exports (no export *)', () => {
  const text = fs.readFileSync(path.join(ROOT, 'src', 'index.ts'), 'utf8');
  expect(text).not.toMatch(/export\s+\*/);
});

test("every name the README's library example takes from the package is exported and defined", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const uses = [...readme.matchAll(/const \{([^}]+)\} = require\('rl-pyramidkd'\)/g)];
  expect(uses.length).toBeGreaterThan(0);
  const names = uses.flatMap((m) => m[1].split(',').map((s) => s.trim()));
  expect(names).toContain('TrainingSession');
  for (const name of names)
    expect([name, typeof (api as Record<string, unknown>)[name]]).not.toEqual([name, 'undefined']);
});

test('every exported value is defined', () => {
  const undefinedNames = Object.entries(api)
    .filter(([, v]) => v === undefined)
    .map(([k]) => k);
  expect(undefinedNames).toEqual([]);
  // Sessions, artifacts, the policy, trainers, configs, data, errors, level pruning.
  for (const name of [
    'createSession',
    'generateArtifacts',
    'generateLevelArtifacts',
    'PolicyNetwork',
    'PPOTrainer',
    'MAMLTrainer',
    'loadConfig',
    'openDataset',
    'RlpkdError',
    'pruneToLevels',
    'splitPyramid',
    'selectionCost',
    'compareWithPytorch',
  ]) {
    expect([name, typeof (api as Record<string, unknown>)[name]]).toEqual([name, 'function']);
  }
});

test('internal helpers are not part of the API', () => {
  for (const name of [
    'toOrtTensor',
    'fromOrtTensor',
    'GRADIENT_RULES',
    'producerMap',
    'moveInitializersToInputs',
    'fusedLayout',
    'HostUpdateKernels',
    'encodeRecord',
    'crc32c',
    'TorchEmitter',
  ]) {
    expect(name in api).toBe(false);
  }
});
