/**
 * Emits ONNX nodes the way torch.onnx.export names them: node `/body/layer1/layer1.0/conv1/Conv` with
 * output `/body/layer1/layer1.0/conv1/Conv_output_0`, parameters under their state_dict keys, frozen
 * batch-norm as Mul/Add with constant initializers (`onnx::Mul_<module>`), shape constants as Constant
 * nodes. Keeps the builders free of naming details and the graphs diffable against real exports.
 */
import { attr } from '../onnx/attributes';
import type { GraphBuilder } from '../onnx/graph-builder';
import { floatTensor, int64Tensor } from '../onnx/tensor-data';
import type { ParameterInit } from './init';

/** A module path as torch's exporter scopes it: ['body', 'layer1', 'layer1.0', 'conv1']. */
export type Scope = readonly string[];

/** The state_dict prefix of a scope (`body.layer1.0.conv1`): a segment extending the previous replaces it. */
export function moduleName(scope: Scope): string {
  const path: string[] = [];
  for (const s of scope) {
    const prev = path[path.length - 1];
    if (prev !== undefined && s.startsWith(`${prev}.`)) path[path.length - 1] = s;
    else path.push(s);
  }
  return path.join('.');
}

/** Scope of a child module: ['body', 'layer1'] + 'layer1.0' (indexed children repeat the parent name). */
export function child(scope: Scope, name: string): Scope {
  return [...scope, name];
}

/** A Conv2d module's hyper-parameters and its parameter-initialization role. */
export interface ConvSpec {
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride?: number;
  padding?: number;
  /** 'backbone': no bias, kaiming-normal; 'fpn': bias, kaiming-uniform a=1. */
  role: 'backbone' | 'fpn';
  /** Name the output tensor (a graph output such as 'p2'); default `<node>_output_0`. */
  output?: string;
}

/** Torch-style node emission over a GraphBuilder. */
export class TorchEmitter {
  constructor(
    readonly b: GraphBuilder,
    readonly init: ParameterInit,
  ) {}

  /** Emits one node in `scope`; returns its single output. */
  op(
    scope: Scope,
    opType: string,
    inputs: string[],
    attributes: Parameters<GraphBuilder['op']>[2] = {},
    output?: string,
  ): string {
    const name = this.freeName(`/${[...scope, opType].join('/')}`);

    const out = output ?? `${name}_output_0`;
    this.b.node(opType, inputs, attributes, { name, outputs: [out] });
    return out;
  }

  /** `base`, or `base_1`, `base_2`, ... (torch's suffixes: Shape, Shape_1) — not reserved until used. */
  private freeName(base: string): string {
    let name = base;
    for (let i = 1; this.b.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  /** A Constant node holding an int64 tensor (scalar when `dims` is []). */
  constantInt64(scope: Scope, values: number[], dims: number[]): string {
    return this.op(scope, 'Constant', [], { value: int64Tensor('value', dims, values) });
  }

  /** Conv2d (torch's attribute set: dilations, group, kernel_shape, pads, strides). */
  conv(scope: Scope, x: string, spec: ConvSpec): string {
    const module = moduleName(scope);
    const k = spec.kernel;
    const stride = spec.stride ?? 1;
    const pad = spec.padding ?? 0;
    const dims = [spec.outChannels, spec.inChannels, k, k];
    const wKey = `${module}.weight`;
    const wData =
      spec.role === 'backbone'
        ? this.init.backboneConvWeight(wKey, dims)
        : this.init.fpnConvWeight(wKey, dims);
    const inputs = [x, this.b.initializer(floatTensor(wKey, dims, wData), { exactName: true })];
    if (spec.role === 'fpn') {
      const bKey = `${module}.bias`;
      const bData = this.init.fpnConvBias(bKey, spec.outChannels, spec.inChannels * k * k);
      inputs.push(this.b.initializer(floatTensor(bKey, [spec.outChannels], bData), { exactName: true }));
    }
    return this.op(
      scope,
      'Conv',
      inputs,
      {
        dilations: [1, 1],
        group: attr.int(1),
        kernel_shape: [k, k],
        pads: [pad, pad, pad, pad],
        strides: [stride, stride],
      },
      spec.output,
    );
  }

  /** FrozenBatchNorm2d after constant folding: Mul by scale, Add shift ([1, C, 1, 1] initializers). */
  frozenBatchNorm(scope: Scope, x: string, channels: number): string {
    const module = moduleName(scope);
    const { scale, shift } = this.init.frozenBatchNorm(module, channels);
    const dims = [1, channels, 1, 1];
    const s = this.b.initializer(floatTensor(`onnx::Mul_${module}`, dims, scale), { exactName: true });
    const t = this.b.initializer(floatTensor(`onnx::Add_${module}`, dims, shift), { exactName: true });
    return this.op(scope, 'Add', [this.op(scope, 'Mul', [x, s]), t]);
  }

  /** ReLU; torch scopes repeated calls of one module as relu, relu_1, relu_2 (the caller passes which). */
  relu(scope: Scope, x: string): string {
    return this.op(scope, 'Relu', [x]);
  }

  /** MaxPool2d (torch's attribute set: ceil_mode, kernel_shape, pads, strides). */
  maxPool(scope: Scope, x: string, kernel: number, stride: number, padding: number, output?: string): string {
    return this.op(
      scope,
      'MaxPool',
      [x],
      {
        ceil_mode: attr.int(0),
        kernel_shape: [kernel, kernel],
        pads: [padding, padding, padding, padding],
        strides: [stride, stride],
      },
      output,
    );
  }

  /**
   * `F.interpolate(x, size=like.shape[-2:], mode='nearest')` as torch 1.13 exports it: the size from
   * Shape/Gather/Unsqueeze/Concat of `like`, joined to Slice(Shape(x), 0, 2) after a Cast, into Resize's
   * `sizes` input (nearest, asymmetric, floor).
   */
  resizeNearestLike(scope: Scope, x: string, like: string): string {
    const dim = (axis: number): string => {
      const shape = this.op(scope, 'Shape', [like]);
      const index = this.constantInt64(scope, [axis], []);
      return this.op(scope, 'Gather', [shape, index], { axis: attr.int(0) });
    };
    const h = dim(2);
    const w = dim(3);
    const unsqueeze = (v: string): string => {
      // torch emits these axes outside the module scope: node `Constant_335` → `onnx::Unsqueeze_1364`.
      const axes = this.freeName('onnx::Unsqueeze');
      const value = int64Tensor('value', [1], [0]);
      this.b.node('Constant', [], { value }, { name: this.freeName('Constant'), outputs: [axes] });
      return this.op(scope, 'Unsqueeze', [v, axes]);
    };
    const hw = this.op(scope, 'Concat', [unsqueeze(h), unsqueeze(w)], { axis: attr.int(0) });
    const xShape = this.op(scope, 'Shape', [x]);
    const axes = this.constantInt64(scope, [0], [1]);
    const starts = this.constantInt64(scope, [0], [1]);
    const ends = this.constantInt64(scope, [2], [1]);
    const nc = this.op(scope, 'Slice', [xShape, starts, ends, axes]);
    const hwCast = this.op(scope, 'Cast', [hw], { to: attr.int(7) });
    const sizes = this.op(scope, 'Concat', [nc, hwCast], { axis: attr.int(0) });
    return this.op(scope, 'Resize', [x, '', '', sizes], {
      coordinate_transformation_mode: 'asymmetric',
      cubic_coeff_a: attr.float(-0.75),
      mode: 'nearest',
      nearest_mode: 'floor',
    });
  }
}

/** Output size of a convolution or pooling along one axis. */
export function convOutSize(size: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}
