/**
 * The PyTorch-autograd cross-check of `rlpkd grad`: tools/torch_grad.py exports a torchvision ResNet-FPN
 * and writes its autograd gradients; `rlpkd grad` (in-process, through main()) writes ours from the same
 * graph, input and targets; every parameter is compared by relative L2 error.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { readNpy } from '../../src/io/npy';
import { compareArrays } from '../helpers/grad-check';

const TOOL = path.join(__dirname, '..', '..', 'tools', 'torch_grad.py');

/** One export to cross-check. */
export interface TorchGradCase {
  arch: 'resnet18' | 'resnet34' | 'resnet50' | 'resnet101';
  opset: number;
  batch: number;
  height: number;
  width: number;
  seed?: number;
}

/** What tools/torch_grad.py writes as manifest.json. */
interface TorchManifest {
  loss: number;
  outputs: Record<string, number>;
  model: string;
  inputs: Record<string, string>;
  targets: Record<string, string>;
  parameters: Record<string, string>;
  timings: { export_s: number; grad_s: number };
}

/** The comparison of one case. */
export interface TorchGradResult {
  label: string;
  parameters: number;
  worst: { parameter: string; relL2: number };
  /** Parameters over the bound, worst first. */
  failures: { parameter: string; relL2: number }[];
  /** Parameters only one side reports. */
  onlyTorch: string[];
  onlyOurs: string[];
  loss: { torch: number; ours: number };
  seconds: { torchExport: number; torchGrad: number; torchTotal: number; ours: number; compare: number };
}

/** `resnet18 opset 17 batch 2 72×104`. */
export function caseLabel(c: TorchGradCase): string {
  return `${c.arch} opset ${c.opset} batch ${c.batch} ${c.height}×${c.width}`;
}

function runTool(python: string, c: TorchGradCase, dir: string): TorchManifest {
  const args = [
    TOOL,
    ...['--arch', c.arch, '--opset', String(c.opset), '--batch', String(c.batch)],
    ...['--height', String(c.height), '--width', String(c.width), '--seed', String(c.seed ?? 0)],
    ...['--out-dir', dir],
  ];
  const r = spawnSync(python, args, { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) {
    throw new Error(`torch_grad.py failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as TorchManifest;
}

/** Runs `rlpkd grad` in-process; throws with its stderr when it fails. */
export async function runGradCli(args: string[]): Promise<void> {
  const errors: string[] = [];
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    errors.push(String(chunk));
    return true;
  });
  let code: number;
  try {
    code = await main(['node', 'rlpkd', 'grad', ...args]);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  if (code !== 0) throw new Error(`rlpkd grad exited ${code}:\n${errors.join('')}`);
}

/** Exports, differentiates on both sides and compares; `bound` is the relative L2 limit. */
export async function crossCheck(
  python: string,
  c: TorchGradCase,
  workDir: string,
  bound = 1e-3,
): Promise<TorchGradResult> {
  const dir = path.join(workDir, `${c.arch}-o${c.opset}-b${c.batch}-${c.height}x${c.width}`);
  let t = Date.now();
  const torch = runTool(python, c, dir);
  const torchTotal = (Date.now() - t) / 1000;
  const at = (f: string): string => path.join(dir, f);
  const ours = path.join(dir, 'ours');
  const args = ['--model', at(torch.model), '--out', ours];
  for (const [n, f] of Object.entries(torch.inputs)) args.push('--input', `${n}=${at(f)}`);
  for (const [n, f] of Object.entries(torch.targets)) args.push('--target', `${n}=${at(f)}`);
  t = Date.now();
  await runGradCli(args);
  const oursSeconds = (Date.now() - t) / 1000;

  t = Date.now();
  const index = JSON.parse(fs.readFileSync(path.join(ours, 'index.json'), 'utf8')) as Record<string, string>;
  const loss = JSON.parse(fs.readFileSync(path.join(ours, 'loss.json'), 'utf8')) as { loss: number };
  const results: { parameter: string; relL2: number }[] = [];
  for (const [name, file] of Object.entries(torch.parameters)) {
    if (!index[name]) continue;
    const ref = readNpy(at(file));
    const got = readNpy(path.join(ours, index[name]));
    if (got.shape.join(',') !== ref.shape.join(',')) {
      results.push({ parameter: `${name} (dims ${got.shape} vs ${ref.shape})`, relL2: Infinity });
      continue;
    }
    results.push({
      parameter: name,
      relL2: compareArrays(got.data as Float32Array, ref.data as Float32Array).relL2,
    });
  }
  results.sort((a, b) => b.relL2 - a.relL2);
  return {
    label: caseLabel(c),
    parameters: results.length,
    worst: results[0] ?? { parameter: '(none)', relL2: NaN },
    failures: results.filter((r) => !(r.relL2 <= bound)),
    onlyTorch: Object.keys(torch.parameters).filter((n) => !index[n]),
    onlyOurs: Object.keys(index).filter((n) => !torch.parameters[n]),
    loss: { torch: torch.loss, ours: loss.loss },
    seconds: {
      torchExport: torch.timings.export_s,
      torchGrad: torch.timings.grad_s,
      torchTotal,
      ours: oursSeconds,
      compare: (Date.now() - t) / 1000,
    },
  };
}

/** One table row per result. */
export function formatResults(results: readonly TorchGradResult[]): string {
  const rows = [
    ['case', 'params', 'worst parameter', 'worst rel L2', 'loss torch / ours', 'torch s', 'rlpkd grad s'],
    ...results.map((r) => [
      r.label,
      String(r.parameters),
      r.worst.parameter,
      r.worst.relL2.toExponential(2),
      `${r.loss.torch.toPrecision(7)} / ${r.loss.ours.toPrecision(7)}`,
      r.seconds.torchTotal.toFixed(1),
      r.seconds.ours.toFixed(1),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows.map((row) => row.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
}
