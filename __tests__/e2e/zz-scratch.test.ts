import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModel } from '../../src/onnx';
import { readNpy } from '../../src/io/npy';
import { computeGradients } from '../../src/training/gradients';

it('scratch', async () => {
  const dir = process.env.SCRATCH_DIR ?? '/tmp/tg/r18';
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const model = loadModel(path.join(dir, m.model));
  const inputs = { images: readNpy(path.join(dir, m.inputs.images)) };
  const targets: Record<string, any> = {};
  for (const [k, f] of Object.entries(m.targets)) { const a = readNpy(path.join(dir, f as string)); targets[k] = { data: a.data, dims: a.shape }; }
  const t0 = Date.now();
  const r = await computeGradients(model, { inputs: { images: { data: inputs.images.data, dims: inputs.images.shape } }, targets, shapes: (process.env.SHAPES as any) ?? 'concrete' });
  console.log('time', Date.now() - t0, 'loss', r.loss, m.loss, r.perOutputLoss, m.outputs);
  let worst = ['', 0];
  const ours = new Set(r.gradients.keys());
  const theirs = new Set(Object.keys(m.parameters));
  console.log('only ours', [...ours].filter((x) => !theirs.has(x)), 'only torch', [...theirs].filter((x) => !ours.has(x)));
  for (const [p, f] of Object.entries(m.parameters)) {
    const ref = readNpy(path.join(dir, f as string)).data as Float32Array;
    const g = r.gradients.get(p);
    if (!g) continue;
    let d = 0, n = 0;
    for (let i = 0; i < ref.length; i++) { d += (g.data[i] as number - ref[i]) ** 2; n += ref[i] ** 2; }
    const rel = Math.sqrt(d / n);
    if (rel > (worst[1] as number)) worst = [p, rel];
    if (process.env.ALL) console.log(p, rel.toExponential(2));
  }
  console.log('worst', worst);
  if (process.env.DUMP) { const { writeNpy } = require('../../src/io/npy'); writeNpy(process.env.DUMP, r.gradients.get('body.conv1.weight')!); }
});
afterAll(() => {});
