/**
 * Gradients of the pooling ops in standard ONNX ops.
 *
 * - MaxPool: the forward node's Indices output (flat positions in N·C·H·W, storage_order 0) drives a
 *   ScatterElements(reduction='add') of dY onto zeros, so overlapping windows (ResNet's k3 s2 stem pool)
 *   accumulate; ceil_mode, pads and dilations need nothing else because the indices are absolute.
 * - AveragePool: dY divided by each window's element count (a constant computed here from static shapes,
 *   following onnxruntime's count_include_pad and ceil_mode rules), then a ConvTranspose with a kernel of
 *   ones over [N·C, 1, Ho, Wo] scatters it back.
 * - GlobalAveragePool: dY / (H·W) expanded to X's shape.
 * - GlobalMaxPool: dY routed to the first maximum of each plane (ArgMax + ScatterElements).
 */
import { GraphError } from '../../errors';
import { getInt, getInts } from '../../onnx/attributes';
import { floatTensor } from '../../onnx/tensor-data';
import type { GradContext, GradientRuleEntry } from '../types';
import {
  adjointTransposePads,
  dilatedKernel,
  product,
  staticDims,
  windowGeometry,
  type WindowGeometry,
} from '../window-geometry';

function poolGeometry(ctx: GradContext): WindowGeometry {
  const x = ctx.node.inputs[0];
  const dims = staticDims(ctx, x, 2, 'input');
  if (dims.length < 3) throw new GraphError(`${ctx.label}: input must have rank >= 3, got ${dims.length}`);
  const kernel = getInts(ctx.node, 'kernel_shape');
  if (!kernel) throw new GraphError(`${ctx.label}: kernel_shape is required`);
  return windowGeometry(ctx.node, ctx.label, dims.slice(2), kernel, {
    ceilMode: getInt(ctx.node, 'ceil_mode', 0) === 1,
  });
}

const maxPool: GradientRuleEntry = {
  opType: 'MaxPool',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY || !ctx.needs[0]) return [];
    if (getInt(ctx.node, 'storage_order', 0) !== 0) {
      throw new GraphError(`${ctx.label}: gradient needs storage_order 0 (row-major Indices)`, {
        hint: 're-export the model without storage_order=1',
      });
    }
    ctx.requireOpset(16, `${ctx.label} gradient uses ScatterElements with reduction='add'`);
    const { b } = ctx;
    const x = ctx.node.inputs[0];
    const indices = ctx.forwardOutput(1);
    const flat = ctx.ints([-1]);
    const zeros = b.op('Reshape', [ctx.zerosLike(x), flat]);
    const scattered = b.op(
      'ScatterElements',
      [zeros, b.op('Reshape', [indices, flat]), b.op('Reshape', [dY, flat])],
      { axis: 0, reduction: 'add' },
      { name: `${ctx.node.name}_grad_scatter` },
    );
    return [b.op('Reshape', [scattered, ctx.shapeOf(x)], {}, { name: `${ctx.node.name}_grad_dx` })];
  },
};

/**
 * Per spatial axis and output position, the divisor onnxruntime uses: with count_include_pad the window
 * clipped to the padded input, otherwise the number of taps inside the input. Both factor over axes.
 */
export function averagePoolCounts(g: WindowGeometry, includePad: boolean): number[][] {
  return g.input.map((h, a) => {
    const counts: number[] = [];
    for (let o = 0; o < g.output[a]; o++) {
      const start = o * g.strides[a] - g.padsBegin[a];
      if (includePad) {
        const end = Math.min(start + dilatedKernel(g.kernel[a], g.dilations[a]), h + g.padsEnd[a]);
        counts.push(Math.ceil((end - start) / g.dilations[a]));
      } else {
        let c = 0;
        for (let t = 0; t < g.kernel[a]; t++) {
          const pos = start + t * g.dilations[a];
          if (pos >= 0 && pos < h) c++;
        }
        counts.push(c);
      }
    }
    return counts;
  });
}

/** The outer product of per-axis reciprocal counts, as a [Ho, Wo, ...] float32 initializer. */
function reciprocalCounts(ctx: GradContext, counts: number[][]): string {
  const dims = counts.map((c) => c.length);
  const values = new Float32Array(product(dims));
  for (let i = 0; i < values.length; i++) {
    let rem = i;
    let v = 1;
    for (let a = dims.length - 1; a >= 0; a--) {
      const o = rem % dims[a];
      rem = Math.floor(rem / dims[a]);
      v *= counts[a][o];
    }
    if (v === 0) throw new GraphError(`${ctx.label}: a pooling window covers no input element`);
    values[i] = 1 / v;
  }
  return ctx.b.initializer(floatTensor(`${ctx.node.name}_grad_inv_count`, dims, values));
}

const averagePool: GradientRuleEntry = {
  opType: 'AveragePool',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY || !ctx.needs[0]) return [];
    const { b } = ctx;
    const g = poolGeometry(ctx);
    const x = ctx.node.inputs[0];
    const channels = staticDims(ctx, x, 1, 'input')[1];
    const includePad = getInt(ctx.node, 'count_include_pad', 0) === 1;
    const scaled = b.op('Mul', [dY, reciprocalCounts(ctx, averagePoolCounts(g, includePad))]);
    const planes = b.op('Reshape', [scaled, ctx.ints([-1, 1, ...g.output])]);
    const ones = b.initializer(
      floatTensor(
        `${ctx.node.name}_grad_ones`,
        [1, 1, ...g.kernel],
        new Float32Array(product(g.kernel)).fill(1),
      ),
    );
    const { pads, outputPadding } = adjointTransposePads(g);
    const spread = b.op(
      'ConvTranspose',
      [planes, ones],
      {
        kernel_shape: g.kernel,
        strides: g.strides,
        dilations: g.dilations,
        pads,
        output_padding: outputPadding,
      },
      { name: `${ctx.node.name}_grad_spread` },
    );
    return [
      b.op(
        'Reshape',
        [spread, ctx.ints([-1, channels, ...g.input])],
        {},
        { name: `${ctx.node.name}_grad_dx` },
      ),
    ];
  },
};

const globalAveragePool: GradientRuleEntry = {
  opType: 'GlobalAveragePool',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY || !ctx.needs[0]) return [];
    const { b } = ctx;
    const x = ctx.node.inputs[0];
    const shape = ctx.info(x).shape;
    const spatial = shape?.slice(2);
    let scaled: string;
    if (spatial && spatial.every((d): d is number => typeof d === 'number')) {
      scaled = b.op('Mul', [dY, ctx.scalar(1 / product(spatial))]);
    } else {
      const sizes = b.op('Slice', [ctx.shapeOf(x), ctx.ints([2]), ctx.ints([Number.MAX_SAFE_INTEGER])]);
      const count = b.op('Cast', [b.op('ReduceProd', [sizes], { keepdims: 0 })], { to: 1 });
      scaled = b.op('Div', [dY, count]);
    }
    return [b.op('Expand', [scaled, ctx.shapeOf(x)], {}, { name: `${ctx.node.name}_grad_dx` })];
  },
};

const globalMaxPool: GradientRuleEntry = {
  opType: 'GlobalMaxPool',
  rule: (ctx) => {
    const dY = ctx.dY[0];
    if (!dY || !ctx.needs[0]) return [];
    const { b } = ctx;
    const x = ctx.node.inputs[0];
    const planes = ctx.ints([0, 0, -1]);
    const x3 = b.op('Reshape', [x, planes]);
    const first = b.op('ArgMax', [x3], { axis: 2, keepdims: 1 });
    const zeros = b.op('Reshape', [ctx.zerosLike(x), planes]);
    const routed = b.op('ScatterElements', [zeros, first, b.op('Reshape', [dY, planes])], { axis: 2 });
    return [b.op('Reshape', [routed, ctx.shapeOf(x)], {}, { name: `${ctx.node.name}_grad_dx` })];
  },
};

export const rules: GradientRuleEntry[] = [maxPool, averagePool, globalAveragePool, globalMaxPool];
