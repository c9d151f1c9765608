/**
 * A plain float64 ResNet-FPN forward pass (one image), written from torchvision's module definitions and
 * reading the tensors of a built graph by state_dict key. The independent reference the builder's ONNX
 * graphs are checked against.
 */
import { RESNET_SPECS, type ResnetDepth } from '../../src/models/resnet';
import type { OnnxModel } from '../../src/onnx';

export interface Map3 {
  c: number;
  h: number;
  w: number;
  data: Float64Array;
}

function conv(
  x: Map3,
  w: ArrayLike<number>,
  outC: number,
  k: number,
  stride: number,
  pad: number,
  bias?: ArrayLike<number>,
): Map3 {
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
  const wd = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(outC * h * wd);
  for (let o = 0; o < outC; o++) {
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < wd; j++) {
        let s = bias ? bias[o] : 0;
        for (let c = 0; c < x.c; c++) {
          for (let u = 0; u < k; u++) {
            const y = i * stride - pad + u;
            if (y < 0 || y >= x.h) continue;
            for (let v = 0; v < k; v++) {
              const z = j * stride - pad + v;
              if (z < 0 || z >= x.w) continue;
              s += w[((o * x.c + c) * k + u) * k + v] * x.data[(c * x.h + y) * x.w + z];
            }
          }
        }
        out[(o * h + i) * wd + j] = s;
      }
    }
  }
  return { c: outC, h, w: wd, data: out };
}

function maxPool(x: Map3, k: number, stride: number, pad: number): Map3 {
  const h = Math.floor((x.h + 2 * pad - k) / stride) + 1;
  const wd = Math.floor((x.w + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(x.c * h * wd);
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < wd; j++) {
        let m = -Infinity;
        for (let u = 0; u < k; u++)
          for (let v = 0; v < k; v++) {
            const y = i * stride - pad + u;
            const z = j * stride - pad + v;
            if (y >= 0 && y < x.h && z >= 0 && z < x.w) m = Math.max(m, x.data[(c * x.h + y) * x.w + z]);
          }
        out[(c * h + i) * wd + j] = m;
      }
  return { c: x.c, h, w: wd, data: out };
}

/** F.interpolate(mode='nearest', size): source index floor(dst * in / out). */
function nearest(x: Map3, h: number, w: number): Map3 {
  const out = new Float64Array(x.c * h * w);
  for (let c = 0; c < x.c; c++)
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const y = Math.min(x.h - 1, Math.floor((i * x.h) / h));
        const z = Math.min(x.w - 1, Math.floor((j * x.w) / w));
        out[(c * h + i) * w + j] = x.data[(c * x.h + y) * x.w + z];
      }
  return { c: x.c, h, w, data: out };
}

const map = (x: Map3, f: (v: number, c: number) => number): Map3 => {
  const hw = x.h * x.w;
  return { ...x, data: x.data.map((v, i) => f(v, Math.floor(i / hw))) };
};
const add = (a: Map3, b: Map3): Map3 => ({ ...a, data: a.data.map((v, i) => v + b.data[i]) });
const relu = (x: Map3): Map3 => map(x, (v) => Math.max(0, v));

/** Runs the reference on one image [3, H, W]; returns p2..p5 (and p6 when asked). */
export function referenceForward(model: OnnxModel, depth: ResnetDepth, image: Map3, p6: boolean): Map3[] {
  const t = new Map(model.graph.initializers.map((x) => [x.name, x]));
  const get = (name: string): ArrayLike<number> => {
    const v = t.get(name);
    if (!v) throw new Error(`reference: no initializer '${name}'`);
    return v.data as Float32Array;
  };
  const convM = (x: Map3, module: string, k: number, stride: number, pad: number, bias = false): Map3 => {
    const w = t.get(`${module}.weight`)!;
    return conv(
      x,
      get(`${module}.weight`),
      w.dims[0],
      k,
      stride,
      pad,
      bias ? get(`${module}.bias`) : undefined,
    );
  };
  const bn = (x: Map3, module: string): Map3 => {
    const s = get(`onnx::Mul_${module}`);
    const b = get(`onnx::Add_${module}`);
    return map(x, (v, c) => v * s[c] + b[c]);
  };
  const spec = RESNET_SPECS[depth];
  let x = relu(bn(convM(image, 'body.conv1', 7, 2, 3), 'body.bn1'));
  x = maxPool(x, 3, 2, 1);
  const cs: Map3[] = [];
  spec.layers.forEach((blocks, s) => {
    for (let i = 0; i < blocks; i++) {
      const m = `body.layer${s + 1}.${i}`;
      const stride = i === 0 && s > 0 ? 2 : 1;
      let y: Map3;
      if (spec.block === 'basic') {
        y = relu(bn(convM(x, `${m}.conv1`, 3, stride, 1), `${m}.bn1`));
        y = bn(convM(y, `${m}.conv2`, 3, 1, 1), `${m}.bn2`);
      } else {
        y = relu(bn(convM(x, `${m}.conv1`, 1, 1, 0), `${m}.bn1`));
        y = relu(bn(convM(y, `${m}.conv2`, 3, stride, 1), `${m}.bn2`));
        y = bn(convM(y, `${m}.conv3`, 1, 1, 0), `${m}.bn3`);
      }
      const idn = t.has(`${m}.downsample.0.weight`)
        ? bn(convM(x, `${m}.downsample.0`, 1, stride, 0), `${m}.downsample.1`)
        : x;
      x = relu(add(y, idn));
    }
    cs.push(x);
  });
  const results: Map3[] = new Array(4);
  let last = convM(cs[3], 'fpn.inner_blocks.3.0', 1, 1, 0, true);
  results[3] = convM(last, 'fpn.layer_blocks.3.0', 3, 1, 1, true);
  for (let i = 2; i >= 0; i--) {
    const lateral = convM(cs[i], `fpn.inner_blocks.${i}.0`, 1, 1, 0, true);
    last = add(lateral, nearest(last, lateral.h, lateral.w));
    results[i] = convM(last, `fpn.layer_blocks.${i}.0`, 3, 1, 1, true);
  }
  if (p6) results.push(maxPool(results[3], 1, 2, 0));
  return results;
}
