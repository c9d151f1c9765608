/**
 * The PyTorch-autograd cross-check of `rlpkd grad`: tools/torch_grad.py exports a torchvision ResNet- or
 * MobileNetV3-FPN and writes its float64 autograd gradients; `rlpkd grad` (in-process, through main()) and
 * computeGradients write ours from the same graph, input and targets; every parameter is compared by
 * relative L2 error.
 *
 * Two references: 'plain' is PyTorch's float64 autograd as is. 'matched' is the same autograd with every
 * ReLU mask and max-pool argmax taken from the engine's own forward pass (torch_grad.py --decisions): at
 * the few elements that sit within float32 rounding of a kink, float32 and float64 legitimately pick
 * different sides, and one such element moves a weight gradient by ~1e-3 (PyTorch float32 vs float64
 * shows the same). torch_grad.py fails if any decision differs anywhere but right at a kink, so the
 * matched reference only resolves genuine ties; the acceptance bound applies to it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { readNpy, writeNpy } from '../../src/io/npy';
import { loadModel, type OnnxModel } from '../../src/onnx';
import type { HostTensor } from '../../src/runtime';
import { computeGradients } from '../../src/training/gradients';
import { relativeL2 } from '../helpers/tensor-compare';

const TOOL = path.join(__dirname, '..', '..', 'tools', 'torch_grad.py');

/** One export to cross-check. */
export interface TorchGradCase {
  /** tools/export_fpn.py's --arch. */
  arch: 'resnet18' | 'resnet34' | 'resnet50' | 'resnet101' | 'mobilenet_v3_large' | 'mobilenet_v3_small';
  opset: number;
  batch: number;
  height: number;
  width: number;
  seed?: number;
  /** Also build the gradient graph with the model's symbolic batch (as training does) and compare. */
  declared?: boolean;
  /** torchvision's all-zero FPN biases, which torch.onnx.export stores as one tied initializer. */
  zeroBias?: boolean;
}

interface TorchReference {
  dtype: string;
  loss: number;
  outputs: Record<string, number>;
  parameters: Record<string, string>;
  grad_s: number;
  decisions: {
    relu_elements: number;
    relu_flipped: number;
    maxpool_windows: number;
    maxpool_flipped: number;
    largest_flip_margin: number;
  } | null;
}

/** What tools/torch_grad.py writes as manifest.json. */
interface TorchManifest {
  model: string;
  inputs: Record<string, string>;
  targets: Record<string, string>;
  timings: { export_s: number };
  references: Record<string, TorchReference>;
}

/** Worst parameter against one reference. */
export interface Comparison {
  worst: { parameter: string; relL2: number };
  /** Parameters over the bound, worst first. */
  failures: { parameter: string; relL2: number }[];
}

/** The comparison of one case. */
export interface TorchGradResult {
  label: string;
  /** The case's folder (export, references, ours, decisions). */
  dir: string;
  parameters: number;
  /** rlpkd grad (CLI) against plain float64 autograd. */
  plain: Comparison;
  /** computeGradients against float64 autograd on the engine's side of every kink. */
  matched: Comparison;
  /** CLI and library gradients: largest relative L2 difference (0 when bit-identical). */
  cliVsLibrary: number;
  /** With `declared`: largest relative L2 difference between symbolic-batch and concrete-shape graphs. */
  declaredVsConcrete?: number;
  /** Parameters only one side reports. */
  onlyTorch: string[];
  onlyOurs: string[];
  /** Copies rlpkd grad made by untying shared initializers (loss.json): copy → shared initializer. */
  untied: Record<string, string>;
  decisions: NonNullable<TorchReference['decisions']>;
  loss: { torch: number; ours: number };
  seconds: { torch: number; cli: number; library: number; total: number };
}

/** `resnet18 opset 17 batch 2 72×104`. */
export function caseLabel(c: TorchGradCase): string {
  return `${c.arch} opset ${c.opset} batch ${c.batch} ${c.height}×${c.width}${c.zeroBias ? ' zero FPN bias' : ''}`;
}

/** Runs tools/torch_grad.py. */
export function runTorchGrad(py: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(py, [TOOL, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function python(py: string, args: string[]): void {
  const r = runTorchGrad(py, args);
  if (r.status !== 0) {
    throw new Error(`torch_grad.py ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
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

function compare(
  ours: Map<string, Float32Array>,
  reference: Record<string, string>,
  dir: string,
  bound: number,
): Comparison {
  const rows: { parameter: string; relL2: number }[] = [];
  for (const [name, file] of Object.entries(reference)) {
    const got = ours.get(name);
    if (!got) continue;
    rows.push({
      parameter: name,
      relL2: relativeL2(got, readNpy(path.join(dir, file)).data as Float32Array),
    });
  }
  rows.sort((a, b) => b.relL2 - a.relL2);
  return {
    worst: rows[0] ?? { parameter: '(none)', relL2: NaN },
    failures: rows.filter((r) => !(r.relL2 <= bound)),
  };
}

/** The model with a named Indices output on every MaxPool, and the tensors that carry the decisions. */
function withDecisionOutputs(model: OnnxModel): { model: OnnxModel; relu: string[]; maxpool: string[] } {
  const relu: string[] = [];
  const maxpool: string[] = [];
  const nodes = model.graph.nodes.map((n) => {
    if (n.opType === 'Relu') relu.push(n.outputs[0]);
    if (n.opType !== 'MaxPool') return n;
    const outputs = [...n.outputs];
    if (!outputs[1]) outputs[1] = `${outputs[0]}.indices`;
    maxpool.push(outputs[1]);
    return { ...n, outputs };
  });
  return { model: { ...model, graph: { ...model.graph, nodes } }, relu, maxpool };
}

/** Exports, differentiates on both sides and compares; `bound` is the relative L2 limit. */
export async function crossCheck(
  py: string,
  c: TorchGradCase,
  workDir: string,
  bound = 1e-3,
): Promise<TorchGradResult> {
  const started = Date.now();
  const dir = path.join(
    workDir,
    `${c.arch}-o${c.opset}-b${c.batch}-${c.height}x${c.width}${c.zeroBias ? '-zero-bias' : ''}`,
  );
  const common = ['--arch', c.arch, '--out-dir', dir];
  let t = Date.now();
  python(py, [
    ...common,
    ...['--opset', String(c.opset), '--batch', String(c.batch), '--seed', String(c.seed ?? 0)],
    ...['--height', String(c.height), '--width', String(c.width)],
    ...(c.zeroBias ? ['--zero-bias'] : []),
  ]);
  let torchSeconds = (Date.now() - t) / 1000;
  const manifest = (): TorchManifest =>
    JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as TorchManifest;
  const m = manifest();
  const at = (f: string): string => path.join(dir, f);

  // 1. rlpkd grad, as a user runs it.
  const cliDir = path.join(dir, 'ours');
  const args = ['--model', at(m.model), '--out', cliDir];
  for (const [n, f] of Object.entries(m.inputs)) args.push('--input', `${n}=${at(f)}`);
  for (const [n, f] of Object.entries(m.targets)) args.push('--target', `${n}=${at(f)}`);
  t = Date.now();
  await runGradCli(args);
  const cliSeconds = (Date.now() - t) / 1000;
  const index = JSON.parse(fs.readFileSync(path.join(cliDir, 'index.json'), 'utf8')) as Record<
    string,
    string
  >;
  const { untied } = JSON.parse(fs.readFileSync(path.join(cliDir, 'loss.json'), 'utf8')) as {
    untied: Record<string, string>;
  };
  const cli = new Map<string, Float32Array>();
  for (const [name, file] of Object.entries(index)) {
    cli.set(name, readNpy(path.join(cliDir, file)).data as Float32Array);
  }

  // 2. The same through the library, also returning the engine's ReLU outputs and max-pool indices.
  const read = (f: string): HostTensor => {
    const a = readNpy(at(f));
    return { data: a.data, dims: a.shape };
  };
  const traced = withDecisionOutputs(loadModel(at(m.model)));
  t = Date.now();
  const feeds = {
    inputs: Object.fromEntries(Object.entries(m.inputs).map(([n, f]) => [n, read(f)])),
    targets: Object.fromEntries(Object.entries(m.targets).map(([n, f]) => [n, read(f)])),
  };
  const result = await computeGradients(traced.model, {
    ...feeds,
    keepOutputs: [...traced.relu, ...traced.maxpool],
  });
  const librarySeconds = (Date.now() - t) / 1000;
  const decisionsDir = path.join(dir, 'decisions');
  fs.rmSync(decisionsDir, { recursive: true, force: true });
  traced.relu.forEach((name, k) =>
    writeNpy(path.join(decisionsDir, `relu_${String(k).padStart(3, '0')}.npy`), result.outputs[name]),
  );
  traced.maxpool.forEach((name, k) =>
    writeNpy(path.join(decisionsDir, `maxpool_${String(k).padStart(3, '0')}.npy`), result.outputs[name]),
  );
  const library = new Map<string, Float32Array>();
  for (const [name, g] of result.gradients) library.set(name, g.data as Float32Array);

  // 3. The matched reference.
  t = Date.now();
  python(py, [...common, '--reuse', '--decisions', decisionsDir, '--grads-dir', 'torch_grads_matched']);
  torchSeconds += (Date.now() - t) / 1000;
  const refs = manifest().references;
  const plain = refs.torch_grads;
  const matched = refs.torch_grads_matched;

  let declaredVsConcrete: number | undefined;
  if (c.declared) {
    const declared = await computeGradients(loadModel(at(m.model)), { ...feeds, shapes: 'declared' });
    declaredVsConcrete = 0;
    for (const [name, g] of declared.gradients) {
      const other = library.get(name);
      declaredVsConcrete = Math.max(
        declaredVsConcrete,
        other ? relativeL2(g.data as Float32Array, other) : Infinity,
      );
    }
  }
  let cliVsLibrary = 0;
  for (const [name, g] of library) {
    const other = cli.get(name);
    cliVsLibrary = Math.max(cliVsLibrary, other ? relativeL2(other, g) : Infinity);
  }
  return {
    label: caseLabel(c),
    dir,
    parameters: library.size,
    plain: compare(cli, plain.parameters, dir, bound),
    matched: compare(library, matched.parameters, dir, bound),
    cliVsLibrary,
    ...(declaredVsConcrete !== undefined ? { declaredVsConcrete } : {}),
    onlyTorch: Object.keys(plain.parameters).filter((n) => !library.has(n)),
    onlyOurs: [...library.keys()].filter((n) => !plain.parameters[n]),
    untied,
    decisions: matched.decisions!,
    loss: { torch: plain.loss, ours: result.loss },
    seconds: {
      torch: torchSeconds,
      cli: cliSeconds,
      library: librarySeconds,
      total: (Date.now() - started) / 1000,
    },
  };
}

/** One table row per result. */
export function formatResults(results: readonly TorchGradResult[]): string {
  const rows = [
    [
      'case',
      'params',
      'worst parameter (matched)',
      'matched rel L2',
      'plain rel L2 (worst parameter)',
      'kink ties (ReLU/pool)',
      'loss torch / ours',
      'rlpkd grad s',
      'case s',
    ],
    ...results.map((r) => [
      r.label,
      String(r.parameters),
      r.matched.worst.parameter,
      r.matched.worst.relL2.toExponential(2),
      `${r.plain.worst.relL2.toExponential(2)} (${r.plain.worst.parameter})`,
      `${r.decisions.relu_flipped}/${r.decisions.maxpool_flipped}`,
      `${r.loss.torch.toPrecision(7)} / ${r.loss.ours.toPrecision(7)}`,
      r.seconds.cli.toFixed(1),
      r.seconds.total.toFixed(0),
    ]),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
