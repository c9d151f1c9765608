/**
 * Issue 11 item 14: on torchvision MobileNetV3-FPN exports (depthwise convolutions, Hardswish — HardSwish
 * at opset 17, x·HardSigmoid(x) at opset 13 —, squeeze-excitation with GlobalAveragePool, HardSigmoid and
 * a broadcast Mul) `rlpkd grad` matches PyTorch float64 autograd with relative L2 error ≤ 1e-3 for every
 * parameter, through the same harness as the ResNet cross-check (torch-grad.test.ts). Small inputs keep
 * the two cases at about 40 s on 2 cores (MobileNetV3-Small exports the same op types). Skips, saying
 * why, without a Python that imports torch, torchvision and onnx.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTorchPython } from '../../src/tools/python';
import {
  caseLabel,
  crossCheck,
  formatResults,
  type TorchGradCase,
  type TorchGradResult,
} from './torch-grad-harness';

const BOUND = 1e-3;
const python = findTorchPython();
if (!python) {
  console.log(
    'skipping the MobileNetV3-FPN autograd cross-check: no Python that imports torch, torchvision and onnx ' +
      '(install python3-torch python3-torchvision python3-onnx, or set RLPKD_PYTHON)',
  );
}

// 64×96 gives P2..P5 of 16×24 down to 2×3; batch 2 at 72×104 gives odd sizes (18×26 … 3×4) and
// non-integer nearest-Resize ratios, with the gradient graph also built for the symbolic batch.
const CASES: TorchGradCase[] = [
  { arch: 'mobilenet_v3_large', opset: 17, batch: 2, height: 72, width: 104, seed: 5, declared: true },
  { arch: 'mobilenet_v3_large', opset: 13, batch: 1, height: 64, width: 96, seed: 6 },
];

(python ? describe : describe.skip)(
  'rlpkd grad vs PyTorch autograd on torchvision MobileNetV3-FPN exports',
  () => {
    const results: TorchGradResult[] = [];
    let work: string;
    beforeAll(() => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-torch-grad-mobilenet-'));
    });
    afterAll(() => {
      fs.rmSync(work, { recursive: true, force: true });
      if (results.length > 0) console.log(`cross-check results (bound ${BOUND}):\n${formatResults(results)}`);
    });

    it.each(CASES.map((c) => [caseLabel(c), c] as const))(
      '%s: every parameter within relative L2 1e-3',
      async (_label, c) => {
        const r = await crossCheck(python!, c, work, BOUND);
        results.push(r);
        fs.rmSync(r.dir, { recursive: true, force: true });
        console.log(
          `${r.label}: worst ${r.matched.worst.parameter} ${r.matched.worst.relL2.toExponential(2)} ` +
            `(plain float64 autograd: ${r.plain.worst.parameter} ${r.plain.worst.relL2.toExponential(2)}; ` +
            `${r.decisions.relu_flipped} ReLU decisions at kinks; ${r.parameters} parameters; ` +
            `${r.seconds.total.toFixed(0)} s)`,
        );
        expect(r.onlyOurs).toEqual([]);
        expect(r.onlyTorch).toEqual([]);
        // Every conv weight and bias, the squeeze-excitation convolutions included (untied where tied).
        expect(r.parameters).toBeGreaterThan(80);
        expect(Math.abs(r.loss.ours - r.loss.torch)).toBeLessThan(1e-4 * Math.abs(r.loss.torch));
        expect(r.matched.failures).toEqual([]);
        expect(r.cliVsLibrary).toBeLessThan(1e-5);
        if (c.declared) expect(r.declaredVsConcrete).toBeLessThan(1e-5);
      },
    );
  },
);
