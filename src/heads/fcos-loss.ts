/**
 * FCOS's training loss as a graph piece (Tian et al. 2019, §3): sigmoid focal loss over every location
 * and class (Lin et al. 2017, α 0.25, γ 2) divided by the number of positive locations; an IoU or GIoU
 * loss of the predicted left/top/right/bottom distances at positive locations, weighted by the
 * centerness target and divided by its sum (as FCOS's reference code); binary cross-entropy of the
 * centerness logit at positive locations divided by the number of positives. Normalizers are at least 1
 * (an image batch without objects gives the classification loss alone). Targets come from
 * assignFcosTargets and enter as graph inputs, so only the predictions are differentiated.
 */
import type { GraphBuilder } from '../onnx/graph-builder';
import { sumAll, sumPerImage } from './cross-entropy';

export type BoxLossKind = 'iou' | 'giou';

export interface FcosLossOptions {
  /** cls_logits [N, A, K], box_ltrb [N, A, 4], centerness [N, A] (head outputs). */
  cls: string;
  box: string;
  centerness: string;
  /** Target inputs: cls [N, A, K] (one-hot, 0 for background), box [N, A, 4], centerness [N, A], positive [N, A]. */
  clsTargets: string;
  boxTargets: string;
  centernessTargets: string;
  positive: string;
  boxLoss?: BoxLossKind;
  alpha?: number;
  gamma?: number;
  /** Also return each image's loss [N]: the same formula on that image alone. */
  perSample?: boolean;
}

export interface FcosLossTensors {
  loss: string;
  cls: string;
  box: string;
  centerness: string;
  /** [N] per-image losses, when asked for. */
  perSample?: string;
}

/** Binary cross-entropy with logits, elementwise: softplus(x) − x·y. */
export function bceWithLogits(b: GraphBuilder, x: string, y: string): string {
  return b.op('Sub', [b.op('Softplus', [x]), b.op('Mul', [x, y])]);
}

/** Elementwise sigmoid focal loss: α_t·(1 − p_t)^γ·BCE(x, y) (torchvision's sigmoid_focal_loss). */
export function sigmoidFocalLoss(
  b: GraphBuilder,
  x: string,
  y: string,
  alpha: number,
  gamma: number,
): string {
  const one = b.constFloat(1, [], 'fcos/one');
  const p = b.op('Sigmoid', [x]);
  const q = b.op('Sub', [one, p]);
  const notY = b.op('Sub', [one, y]);
  const pt = b.op('Add', [b.op('Mul', [p, y]), b.op('Mul', [q, notY])]);
  const modulation = b.op('Pow', [b.op('Sub', [one, pt]), b.constFloat(gamma, [], 'fcos/gamma')]);
  const alphaT = b.op('Add', [
    b.op('Mul', [y, b.constFloat(alpha, [], 'fcos/alpha')]),
    b.op('Mul', [notY, b.constFloat(1 - alpha, [], 'fcos/one_minus_alpha')]),
  ]);
  return b.op('Mul', [b.op('Mul', [alphaT, modulation]), bceWithLogits(b, x, y)]);
}

/**
 * Elementwise IoU (−log IoU, UnitBox) or GIoU (1 − GIoU) loss of two boxes given as distances from the
 * same point, [N, A, 4] each → [N, A]. Both must be positive where the result is used.
 */
export function ltrbBoxLoss(b: GraphBuilder, pred: string, target: string, kind: BoxLossKind): string {
  const side = (x: string, i: number): string =>
    b.op('Gather', [x, b.constInt64(i, [], `fcos/side_${i}`)], { axis: 2 });
  const [pl, pt, pr, pb] = [0, 1, 2, 3].map((i) => side(pred, i));
  const [tl, tt, tr, tb] = [0, 1, 2, 3].map((i) => side(target, i));
  const add = (x: string, y: string): string => b.op('Add', [x, y]);
  const mul = (x: string, y: string): string => b.op('Mul', [x, y]);
  const predArea = mul(add(pl, pr), add(pt, pb));
  const targetArea = mul(add(tl, tr), add(tt, tb));
  const pair = (op: 'Min' | 'Max', x: string, y: string): string => b.op(op, [x, y]);
  const inter = mul(
    add(pair('Min', pl, tl), pair('Min', pr, tr)),
    add(pair('Min', pt, tt), pair('Min', pb, tb)),
  );
  const union = b.op('Sub', [add(predArea, targetArea), inter]);
  const iou = b.op('Div', [inter, union]);
  if (kind === 'iou') return b.op('Neg', [b.op('Log', [iou])]);
  const enclosing = mul(
    add(pair('Max', pl, tl), pair('Max', pr, tr)),
    add(pair('Max', pt, tt), pair('Max', pb, tb)),
  );
  const giou = b.op('Sub', [iou, b.op('Div', [b.op('Sub', [enclosing, union]), enclosing])]);
  return b.op('Sub', [b.constFloat(1, [], 'fcos/one'), giou]);
}

/** Appends the FCOS loss; returns the total and its three parts (scalars). */
export function fcosLoss(b: GraphBuilder, o: FcosLossOptions): FcosLossTensors {
  const one = b.constFloat(1, [], 'fcos/one');
  const eps = b.constFloat(1e-6, [], 'fcos/eps');
  const focal = sigmoidFocalLoss(b, o.cls, o.clsTargets, o.alpha ?? 0.25, o.gamma ?? 2);
  // Negatives carry no box target; the target is set to a unit box there so the IoU stays finite (a 0/0
  // would turn into NaN gradients even behind a zero weight).
  const isPos = b.op('Unsqueeze', [
    b.op('Greater', [o.positive, b.constFloat(0, [], 'fcos/zero')]),
    b.constInt64([2], [1], 'fcos/axis2'),
  ]);
  const safeTarget = b.op('Where', [isPos, o.boxTargets, one]);
  const weight = b.op('Mul', [o.centernessTargets, o.positive]);
  const boxTerms = b.op('Mul', [ltrbBoxLoss(b, o.box, safeTarget, o.boxLoss ?? 'giou'), weight]);
  const ctrTerms = b.op('Mul', [bceWithLogits(b, o.centerness, o.centernessTargets), o.positive]);
  /** The three normalized parts, summed by `sum` (over the batch, or per image). */
  const parts = (sum: (x: string, rank: number) => string, names?: string[]): string[] => {
    const numPos = b.op('Max', [sum(o.positive, 2), one]);
    const ratio = (x: string, d: string, i: number): string =>
      b.op('Div', [x, d], {}, names ? { name: names[i] } : {});
    return [
      ratio(sum(focal, 3), numPos, 0),
      ratio(sum(boxTerms, 2), b.op('Max', [sum(weight, 2), eps]), 1),
      ratio(sum(ctrTerms, 2), numPos, 2),
    ];
  };
  const total = (p: string[]): string => b.op('Add', [b.op('Add', [p[0], p[1]]), p[2]]);
  const [cls, box, centerness] = parts(
    (x) => sumAll(b, x),
    ['fcos/loss_cls', 'fcos/loss_box', 'fcos/loss_centerness'],
  );
  const result: FcosLossTensors = { loss: total([cls, box, centerness]), cls, box, centerness };
  if (o.perSample) result.perSample = total(parts((x, rank) => sumPerImage(b, x, rank)));
  return result;
}
