/** Seeded inputs for the head tests: pyramid features and FCOS target feeds. */
import type { HeadLevel } from '../../src/heads';
import { GraphBuilder } from '../../src/onnx/graph-builder';
import { floatTensor } from '../../src/onnx/tensor-data';
import { DataType, type OnnxModel } from '../../src/onnx/types';
import type { HostTensor } from '../../src/runtime';
import { Rng } from '../../src/util/rng';

/** Standard-normal features for each level, batch `n`. */
export function levelFeeds(
  levels: readonly HeadLevel[],
  n: number,
  seed: number,
): Record<string, HostTensor> {
  const rng = new Rng(seed);
  return Object.fromEntries(
    levels.map((l) => {
      const dims = [n, l.channels, l.height, l.width];
      const data = Float32Array.from({ length: n * l.channels * l.height * l.width }, () => rng.normal(0, 1));
      return [l.name, { data, dims }];
    }),
  );
}

/** The head loss's detection target inputs (the library's, re-exported for the head tests). */
export { fcosTargetFeeds } from '../../src/teach/task-feeds';

/** int64 labels. */
export function int64Feed(values: readonly number[], dims: number[]): HostTensor {
  return { data: BigInt64Array.from(values.map((v) => BigInt(v))), dims };
}

/**
 * A tiny image backbone: three stride-2 3×3 convs + ReLU on [N, 3, size, size] (default 16), outputs p2
 * (size/4 square) and p3 (size/8).
 */
export function tinyBackbone(seed: number, width = 8, size = 16): { model: OnnxModel; levels: HeadLevel[] } {
  const rng = new Rng(seed);
  const b = new GraphBuilder({ name: 'tiny_backbone' });
  b.input('images', DataType.FLOAT, ['batch', 3, size, size]);
  const layer = (x: string, name: string, cin: number): string => {
    const std = Math.sqrt(2 / (cin * 9));
    const w = Float32Array.from({ length: width * cin * 9 }, () => rng.normal(0, std));
    const weight = b.initializer(floatTensor(`${name}.weight`, [width, cin, 3, 3], w), { exactName: true });
    const bias = b.initializer(floatTensor(`${name}.bias`, [width], new Float32Array(width)), {
      exactName: true,
    });
    const y = b.op('Conv', [x, weight, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] });
    return b.op('Relu', [y]);
  };
  const c1 = layer('images', 'body.conv1', 3);
  b.op('Identity', [layer(c1, 'body.conv2', width)], {}, { outputs: ['p2'] });
  b.op('Identity', [layer('p2', 'body.conv3', width)], {}, { outputs: ['p3'] });
  const [s2, s3] = [size / 4, size / 8];
  b.output('p2', DataType.FLOAT, ['batch', width, s2, s2]);
  b.output('p3', DataType.FLOAT, ['batch', width, s3, s3]);
  return {
    model: b.build(),
    levels: [
      { name: 'p2', channels: width, stride: 4, height: s2, width: s2 },
      { name: 'p3', channels: width, stride: 8, height: s3, width: s3 },
    ],
  };
}

/** A toy scene: one square of side 4..10 on faint noise, its class (0 or 1) the channel it lights up. */
export interface ToyScene {
  box: [number, number, number, number];
  label: number;
}

/** `n` toy 16×16 scenes and their image batch. */
export function toyScenes(n: number, seed: number): { scenes: ToyScene[]; images: HostTensor } {
  const rng = new Rng(seed);
  const data = new Float32Array(n * 3 * 256);
  const scenes: ToyScene[] = [];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 3 * 256; j++) data[i * 768 + j] = rng.normal(0, 0.1);
    const s = 4 + rng.int(7);
    const [x, y] = [rng.int(17 - s), rng.int(17 - s)];
    const label = rng.int(2);
    for (let yy = y; yy < y + s; yy++)
      for (let xx = x; xx < x + s; xx++) data[i * 768 + label * 256 + yy * 16 + xx] += 1;
    scenes.push({ box: [x, y, x + s, y + s], label });
  }
  return { scenes, images: { data, dims: [n, 3, 16, 16] } };
}
