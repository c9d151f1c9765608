/**
 * The fast member of the PyTorch-autograd cross-check (the full matrix is __tests__/e2e/torch-grad.test.ts,
 * `npm run test:e2e`): a torchvision ResNet-18-FPN export, opset 17, batch 2, 72×104, through
 * `rlpkd grad` and computeGradients, every parameter within relative L2 1e-3 of PyTorch autograd.
 * Skips, saying why, without a Python that imports torch, torchvision and onnx.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTorchPython } from '../../src/tools/python';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';
import { crossCheck, formatResults } from '../e2e/torch-grad-harness';

const python = optionalReference(
  'the ResNet-18-FPN PyTorch autograd cross-check',
  findTorchPython(),
  TORCH_INSTALL_HINT,
);
// PyTorch starts twice and exports once: ~15 s alone, longer on a busy machine.
jest.setTimeout(300_000);

(python ? describe : describe.skip)('rlpkd grad vs PyTorch autograd (ResNet-18-FPN)', () => {
  let work: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-torch-grad-fast-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('resnet18 opset 17 batch 2 72×104: every parameter within relative L2 1e-3', async () => {
    const r = await crossCheck(
      python!,
      { arch: 'resnet18', opset: 17, batch: 2, height: 72, width: 104, seed: 3 },
      work,
    );
    console.log(formatResults([r]));
    expect(r.onlyOurs).toEqual([]);
    expect(r.onlyTorch).toEqual([]);
    expect(r.parameters).toBe(36); // 20 body conv weights + 8 FPN weights + 8 FPN biases
    expect(r.matched.failures).toEqual([]);
    expect(r.cliVsLibrary).toBeLessThan(1e-5);
  });
});
