import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findTorchPython } from '../../src/tools/python';
import { crossCheck, formatResults, type TorchGradCase, type TorchGradResult } from './torch-grad-harness';

it('explore', async () => {
  const py = findTorchPython()!;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tg-'));
  const results: TorchGradResult[] = [];
  const archs = (process.env.ARCHS ?? 'resnet18,resnet50,resnet101').split(',') as TorchGradCase['arch'][];
  const [h, w] = (process.env.SIZE ?? '72x104').split('x').map(Number);
  for (const arch of archs) for (const opset of [13, 17]) for (const batch of [1, 2]) {
    const r = await crossCheck(py, { arch, opset, batch, height: h, width: w, seed: Number(process.env.SEED ?? 0) }, work);
    results.push(r);
    console.log(r.label, r.worst, r.failures.slice(0, 4), r.onlyOurs, r.onlyTorch, r.seconds);
    fs.rmSync(work, { recursive: true, force: true }); fs.mkdirSync(work);
  }
  console.log(formatResults(results));
}, 3600_000);
