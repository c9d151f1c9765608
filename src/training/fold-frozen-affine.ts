/**
 * Folds a frozen per-channel affine that follows a trainable Conv into the Conv: `Conv(x, W, b0)·s + t`
 * becomes `Conv(x, W·s, b0·s + t)`. torchvision exports FrozenBatchNorm2d as exactly such a Mul and Add
 * of constants after every backbone conv; with W a graph input onnxruntime cannot fuse them, so each
 * costs two passes over the activation forward and one backward (~50 ms of a ResNet-50-FPN step at
 * batch 2, 224²). Folded, the scale touches only the weight and the shift rides on the Conv's bias;
 * that pays where the Conv's output is larger than its weight (see `pays`).
 * The trainable parameter stays W (same name and values); results agree up to float32 rounding.
 */
import { consumerMap, initializerBehind, producerMap } from '../onnx/graph-structure';
import { inferShapes } from '../onnx/shape-inference';
import { DataType, type OnnxModel, type OnnxNode, type OnnxTensor } from '../onnx/types';

/** What was folded. */
export interface FoldResult {
  model: OnnxModel;
  /** Names of the Conv nodes whose following Mul (and Add) were folded in. */
  folded: string[];
}

/** A float32 constant per output channel (or a scalar) read through Identity nodes, with its values. */
interface ChannelConstant {
  values: Float32Array;
}

/**
 * Returns a copy of `model` with the foldable `Conv → Mul(const) [→ Add(const)]` chains folded where that
 * saves memory traffic (every one with `always`), for Convs whose weight is one of `trainable`. A chain folds only when the Conv's output (and the Mul's, before an
 * Add) has that single reader and is no graph output, and each constant is float32 and broadcasts along
 * the channel axis alone (or is a scalar). The input model is not changed.
 */
export function foldFrozenAffine(
  model: OnnxModel,
  trainable: ReadonlySet<string>,
  options: { always?: boolean } = {},
): FoldResult {
  const g = model.graph;
  const shapes = options.always ? undefined : inferShapes(model);
  /**
   * Unfolded, the affine costs ~3 passes over the Conv's output per sample (Mul and Add forward, Mul
   * backward); folded, 2 passes over the weight (scaling it forward, scaling its gradient backward). Fold
   * where that pays at batch 1 (early, high-resolution layers), not where weights outweigh maps (deep layers).
   */
  const pays = (conv: OnnxNode, weight: OnnxTensor): boolean => {
    if (!shapes) return true;
    const out = shapes.get(conv.outputs[0])?.shape;
    if (!out || !out.slice(1).every((d): d is number => typeof d === 'number')) return false;
    const perSample = (out.slice(1) as number[]).reduce((a, d) => a * d, 1);
    return 3 * perSample >= 2 * weight.dims.reduce((a, d) => a * d, 1);
  };
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const producer = producerMap(g);
  const readers = consumerMap(g);
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const taken = new Set<string>([
    ...g.initializers.map((t) => t.name),
    ...g.inputs.map((v) => v.name),
    ...g.nodes.flatMap((n) => [n.name, ...n.outputs]),
  ]);
  const unique = (base: string): string => {
    let name = base;
    for (let k = 1; taken.has(name); k++) name = `${base}_${k}`;
    taken.add(name);
    return name;
  };

  /** The constant behind `name` (an initializer, possibly through Identity nodes) if it is per-channel. */
  const channelConstant = (name: string, channels: number, rank: number): ChannelConstant | undefined => {
    const t = initializerBehind(name, inits, producer);
    if (!t || trainable.has(t.name) || t.dataType !== DataType.FLOAT || !(t.data instanceof Float32Array)) {
      return undefined;
    }
    const n = t.data.length;
    if (n === 1) return { values: new Float32Array(channels).fill(t.data[0]) };
    // Right-aligned against the Conv output [N, C, spatial…]: only the channel axis may exceed 1.
    if (n !== channels || t.dims.length > rank) return undefined;
    const channelAxis = t.dims.length - (rank - 1);
    if (!t.dims.every((d, i) => (i === channelAxis ? d === channels : d === 1))) return undefined;
    return { values: t.data.slice() };
  };

  const single = (tensor: string): OnnxNode | undefined => {
    const r = readers.get(tensor);
    return r && r.length === 1 && !graphOutputs.has(tensor) ? r[0] : undefined;
  };

  const nodes: OnnxNode[] = [];
  const dropped = new Set<OnnxNode>();
  const added: OnnxTensor[] = [];
  const folded: string[] = [];
  for (const conv of g.nodes) {
    if (dropped.has(conv)) continue;
    const w = conv.inputs[1];
    const wInit = w ? inits.get(w) : undefined;
    const mul =
      conv.opType === 'Conv' && !conv.domain && wInit && trainable.has(w)
        ? single(conv.outputs[0])
        : undefined;
    if (!mul || mul.opType !== 'Mul' || mul.domain || !wInit || !pays(conv, wInit)) {
      nodes.push(conv);
      continue;
    }
    const channels = wInit.dims[0];
    const rank = wInit.dims.length; // the Conv output has the weight's rank
    const scaleInput = mul.inputs[0] === conv.outputs[0] ? mul.inputs[1] : mul.inputs[0];
    const scale = channelConstant(scaleInput, channels, rank);
    if (!scale) {
      nodes.push(conv);
      continue;
    }
    const add = single(mul.outputs[0]);
    const shiftInput =
      add && add.opType === 'Add' && !add.domain
        ? add.inputs[0] === mul.outputs[0]
          ? add.inputs[1]
          : add.inputs[0]
        : undefined;
    const shift = shiftInput !== undefined ? channelConstant(shiftInput, channels, rank) : undefined;
    const base = conv.name || conv.outputs[0];
    /** Appends one elementwise node of the fold; returns its output. */
    const emit = (opType: 'Mul' | 'Add', name: string, inputs: string[], output: string): string => {
      nodes.push({
        name: unique(`${base}/${name}`),
        opType,
        domain: '',
        inputs,
        outputs: [output],
        attributes: {},
      });
      return output;
    };

    const scaleName = unique(`${base}.frozen_scale`);
    added.push({
      name: scaleName,
      dataType: DataType.FLOAT,
      dims: [channels, ...Array(rank - 1).fill(1)],
      data: scale.values,
    });
    const scaledW = emit('Mul', 'fold_scale', [w, scaleName], unique(`${base}.scaled_weight`));

    // New bias: b0·s + t, with whichever of b0 and t exist.
    const b0 = conv.inputs[2] || undefined;
    let bias: string | undefined;
    if (b0) {
      const flatScale = unique(`${base}.frozen_scale_flat`);
      added.push({ name: flatScale, dataType: DataType.FLOAT, dims: [channels], data: scale.values.slice() });
      bias = emit('Mul', 'fold_bias_scale', [b0, flatScale], unique(`${base}.scaled_bias`));
    }
    if (shift) {
      const shiftName = unique(`${base}.frozen_shift`);
      added.push({ name: shiftName, dataType: DataType.FLOAT, dims: [channels], data: shift.values });
      bias = bias
        ? emit('Add', 'fold_bias_shift', [bias, shiftName], unique(`${base}.folded_bias`))
        : shiftName;
    }
    const last = shift ? add! : mul;
    nodes.push({
      ...conv,
      inputs: [conv.inputs[0], scaledW, ...(bias ? [bias] : [])],
      outputs: [last.outputs[0]],
    });
    dropped.add(mul);
    if (shift) dropped.add(add!);
    folded.push(conv.name);
  }
  if (folded.length === 0) return { model, folded };
  const kept = nodes.filter((n) => !dropped.has(n));
  const removedOutputs = new Set<string>();
  for (const n of dropped) for (const o of n.outputs) removedOutputs.add(o);
  return {
    model: {
      ...model,
      graph: {
        ...g,
        nodes: kept,
        initializers: [...g.initializers, ...added],
        valueInfo: g.valueInfo.filter((v) => !removedOutputs.has(v.name)),
      },
    },
    folded,
  };
}

/** Node names foldFrozenAffine gives its elementwise nodes (`<conv>/fold_scale`, possibly `_k`-suffixed). */
const FOLD_NODE = (role: 'fold_scale' | 'fold_bias_scale' | 'fold_bias_shift'): RegExp =>
  new RegExp(`/${role}(_\\d+)?$`);

/**
 * Undoes foldFrozenAffine: every `Conv(x, W·s, b0·s + t)` it made becomes `Conv(x, W, b0) → Mul(s) →
 * Add(t)` again, so a model exported from training artifacts has the structure of the model it was
 * trained from (its weights read directly by Conv, frozen constants as constants), for inspection,
 * parameter export and transplanting. Recognizes only the nodes the fold names; the rest is kept.
 * The input model is not changed.
 */
export function unfoldFrozenAffine(model: OnnxModel): FoldResult {
  const g = model.graph;
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const producer = producerMap(g);
  const readers = consumerMap(g);
  const made = (tensor: string | undefined, role: Parameters<typeof FOLD_NODE>[0]): OnnxNode | undefined => {
    const p = tensor ? producer.get(tensor) : undefined;
    return p && p.opType === (role === 'fold_bias_shift' ? 'Add' : 'Mul') && FOLD_NODE(role).test(p.name)
      ? p
      : undefined;
  };
  const onlyReader = (tensor: string, node: OnnxNode): boolean =>
    (readers.get(tensor) ?? []).every((r) => r === node);
  const dropped = new Set<OnnxNode>();
  const dropInits = new Set<string>();
  const replaced = new Map<OnnxNode, OnnxNode[]>();
  const added: OnnxTensor[] = [];
  const folded: string[] = [];
  for (const conv of g.nodes) {
    if (conv.opType !== 'Conv') continue;
    const scaleNode = made(conv.inputs[1], 'fold_scale');
    const scale = scaleNode ? inits.get(scaleNode.inputs[1]) : undefined;
    if (!scaleNode || !scale || !onlyReader(scaleNode.outputs[0], conv)) continue;
    // The bias slot: t alone, b0·s, or b0·s + t (see foldFrozenAffine).
    const biasIn = conv.inputs[2] || undefined;
    const shiftNode = made(biasIn, 'fold_bias_shift');
    const biasScale = made(shiftNode ? shiftNode.inputs[0] : biasIn, 'fold_bias_scale');
    const shiftName = shiftNode ? shiftNode.inputs[1] : biasIn && !biasScale ? biasIn : undefined;
    const shift = shiftName ? inits.get(shiftName) : undefined;
    if (shiftName && !shift) continue; // not the fold's own bias: leave the Conv alone
    const rank = scale.dims.length;
    const channelDims = [scale.dims[0], ...Array<number>(rank - 2).fill(1)]; // against [N, C, spatial…]
    const out = conv.outputs[0];
    const base = conv.name || out;
    const convOut = `${base}.unfolded_conv`;
    const scaledOut = shift ? `${base}.unfolded_scaled` : out;
    const nodes: OnnxNode[] = [
      {
        ...conv,
        inputs: [conv.inputs[0], scaleNode.inputs[0], ...(biasScale ? [biasScale.inputs[0]] : [])],
        outputs: [convOut],
      },
      {
        name: `${base}/frozen_scale`,
        opType: 'Mul',
        domain: '',
        inputs: [convOut, scale.name],
        outputs: [scaledOut],
        attributes: {},
      },
    ];
    added.push({ ...scale, dims: channelDims });
    dropInits.add(scale.name);
    dropped.add(scaleNode);
    if (biasScale) {
      dropped.add(biasScale);
      dropInits.add(biasScale.inputs[1]);
    }
    if (shift) {
      nodes.push({
        name: `${base}/frozen_shift`,
        opType: 'Add',
        domain: '',
        inputs: [scaledOut, shift.name],
        outputs: [out],
        attributes: {},
      });
      added.push({ ...shift, dims: channelDims });
      dropInits.add(shift.name);
      if (shiftNode) dropped.add(shiftNode);
    }
    replaced.set(conv, nodes);
    folded.push(conv.name);
  }
  if (folded.length === 0) return { model, folded };
  const nodes = g.nodes.filter((n) => !dropped.has(n)).flatMap((n) => replaced.get(n) ?? [n]);
  const stillRead = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = [
    ...g.initializers.filter(
      (t) => !dropInits.has(t.name) || (stillRead.has(t.name) && !added.some((a) => a.name === t.name)),
    ),
    ...added,
  ];
  const removedOutputs = new Set([...dropped].flatMap((n) => n.outputs));
  return {
    model: {
      ...model,
      graph: { ...g, nodes, initializers, valueInfo: g.valueInfo.filter((v) => !removedOutputs.has(v.name)) },
    },
    folded,
  };
}
