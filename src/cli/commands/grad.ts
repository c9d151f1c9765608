/**
 * `rlpkd grad`: the gradient of L = Σ_outputs mean((output − target)²) with respect to every trainable
 * parameter, one `.npy` per parameter, so anyone can compare the engine with PyTorch autograd.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { InputFileError, RlpkdError } from '../../errors';
import { readNpy, writeNpy } from '../../io/npy';
import { loadModel, writeFileAtomic } from '../../onnx/model-io';
import type { ExecutionProviderName } from '../../runtime/session';
import type { HostTensor } from '../../runtime/tensors';
import { computeGradients } from '../../training/gradients';
import { choice, provider } from '../option-parsers';

interface GradOptions {
  model: string;
  input?: string[];
  target?: string[];
  loss: 'mse';
  out: string;
  ep: ExecutionProviderName;
  untie: boolean;
}

/** Files the command writes next to the gradients. */
export const GRAD_INDEX_FILE = 'index.json';
export const GRAD_LOSS_FILE = 'loss.json';

/** Splits `NAME=FILE` specs (at the first '='); a name given twice is an error. */
export function parseAssignments(specs: readonly string[], flag: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) {
      throw new RlpkdError(`${flag} '${spec}' is not NAME=FILE.npy`, {
        hint: `e.g. ${flag} images=batch.npy`,
      });
    }
    const name = spec.slice(0, eq);
    if (out.has(name)) throw new RlpkdError(`${flag} names '${name}' twice`);
    out.set(name, spec.slice(eq + 1));
  }
  return out;
}

/**
 * A file name for a parameter's gradient: the name itself plus `.npy` when it is safe (letters, digits,
 * '.', '_', '-', not starting with '.'), else a sanitized name with a short hash of the original so two
 * names never map to the same file. index.json records the mapping either way.
 */
export function gradientFileName(name: string): string {
  const safe = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name) && name.length <= 200;
  if (safe) return `${name}.npy`;
  const hash = createHash('sha1').update(name).digest('hex').slice(0, 8);
  const base = name
    .replace(/[^A-Za-z0-9._-]/g, '_')
    .replace(/^\./, '_')
    .slice(0, 180);
  return `${base}-${hash}.npy`;
}

function readArray(file: string, what: string): HostTensor {
  const a = readNpy(file, what);
  return { data: a.data, dims: a.shape };
}

/** Removes gradient files an earlier run listed in index.json that this run does not write. */
function removeStale(dir: string, keep: ReadonlySet<string>): void {
  const file = path.join(dir, GRAD_INDEX_FILE);
  if (!fs.existsSync(file)) return;
  let old: unknown;
  try {
    old = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (!old || typeof old !== 'object') return;
  for (const f of Object.values(old as Record<string, unknown>)) {
    if (typeof f !== 'string' || keep.has(f) || !f.endsWith('.npy') || f !== path.basename(f)) continue;
    fs.rmSync(path.join(dir, f), { force: true });
  }
}

async function runGrad(opts: GradOptions): Promise<void> {
  const inputs = parseAssignments(opts.input ?? [], '--input');
  const targets = parseAssignments(opts.target ?? [], '--target');
  if (targets.size === 0) {
    throw new RlpkdError('give at least one --target OUTPUT=FILE.npy (the loss regresses those outputs)');
  }
  const model = loadModel(opts.model);
  const feeds: Record<string, HostTensor> = {};
  for (const [name, file] of inputs) feeds[name] = readArray(file, `input '${name}'`);
  const wanted: Record<string, HostTensor> = {};
  for (const [name, file] of targets) wanted[name] = readArray(file, `target '${name}'`);

  const result = await computeGradients(model, {
    inputs: feeds,
    targets: wanted,
    loss: opts.loss,
    untie: opts.untie,
    executionProvider: opts.ep,
  });

  const dir = opts.out;
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
    throw new InputFileError(`--out '${dir}' exists and is not a folder`);
  }
  fs.mkdirSync(dir, { recursive: true });
  const index: Record<string, string> = {};
  const used = new Map<string, string>();
  let values = 0;
  for (const [name, grad] of result.gradients) {
    const file = gradientFileName(name);
    const clash = used.get(file.toLowerCase());
    if (clash !== undefined) {
      // Only possible on names differing in case alone; case-insensitive file systems would merge them.
      throw new RlpkdError(`parameters '${clash}' and '${name}' would share the file '${file}'`);
    }
    used.set(file.toLowerCase(), name);
    index[name] = file;
    values += grad.data.length;
  }
  removeStale(dir, new Set(Object.values(index)));
  // The index and loss.json go last: a reader that finds them finds every gradient they list.
  fs.rmSync(path.join(dir, GRAD_INDEX_FILE), { force: true });
  fs.rmSync(path.join(dir, GRAD_LOSS_FILE), { force: true });
  for (const [name, grad] of result.gradients) writeNpy(path.join(dir, index[name]), grad);
  writeFileAtomic(path.join(dir, GRAD_INDEX_FILE), `${JSON.stringify(index, null, 2)}\n`);
  const summary = {
    loss: result.loss,
    outputs: result.perOutputLoss,
    parameters: result.gradients.size,
    model: path.resolve(opts.model),
    inputs: Object.fromEntries([...inputs].map(([n, f]) => [n, path.resolve(f)])),
    targets: Object.fromEntries([...targets].map(([n, f]) => [n, path.resolve(f)])),
    lossType: opts.loss,
    untied: result.untied,
    executionProvider: result.executionProvider,
  };
  writeFileAtomic(path.join(dir, GRAD_LOSS_FILE), `${JSON.stringify(summary, null, 2)}\n`);

  const terms = Object.entries(result.perOutputLoss)
    .map(([o, v]) => `${o} ${v.toPrecision(6)}`)
    .join(', ');
  process.stdout.write(
    `wrote ${result.gradients.size} parameter gradients (${values.toLocaleString('en-US')} values) to ${dir}\n` +
      `loss ${result.loss.toPrecision(6)} (${terms}); ${GRAD_INDEX_FILE} maps parameter names to files\n`,
  );
}

/** `rlpkd grad`: dL/dp for every trainable parameter as .npy files, to compare with PyTorch autograd. */
export function registerGrad(program: Command): void {
  program
    .command('grad')
    .description(
      'write the gradient of an MSE loss for every trainable parameter as .npy (compare with PyTorch)',
    )
    .requiredOption('--model <file>', 'ONNX model')
    .option('--input <name=file...>', 'graph input fed from a .npy file (repeatable)')
    .requiredOption('--target <output=file...>', 'target of a graph output, a .npy file (repeatable)')
    .option('--loss <type>', 'loss: mse = Σ_outputs mean((output − target)²)', choice('mse'), 'mse')
    .requiredOption('--out <dir>', 'folder for <parameter>.npy, index.json and loss.json')
    .option('--ep <provider>', 'execution provider: cpu | cuda | webgpu | auto', provider, 'cpu')
    .option('--no-untie', 'keep shared parameter initializers tied (one gradient for all their uses)')
    .action(async (opts: GradOptions) => runGrad(opts));
}
