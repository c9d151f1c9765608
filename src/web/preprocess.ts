/**
 * Image → the student's input: RGBA pixels (ImageData, or anything with width, height and RGBA data)
 * at the bundle's input size → NCHW float32 [1, 3, H, W] with the training normalization
 * (x/255 − mean)/std, computed as x·(1/(255·std)) − mean/std like the training loader.
 */
import { RlpkdError } from '../errors';
import type { BundleMeta } from './bundle-format';

/** RGBA pixels, row-major (the shape of the DOM's ImageData). */
export interface RgbaImage {
  width: number;
  height: number;
  data: ArrayLike<number>;
}

/** [1, 3, H, W] normalized float32 of an RGBA image that already has the bundle's input size. */
export function preprocessImage(image: RgbaImage, input: BundleMeta['input']): Float32Array {
  const { height: H, width: W } = input;
  if (image.width !== W || image.height !== H) {
    throw new RlpkdError(`the image is ${image.width}×${image.height}, the student takes ${W}×${H}`, {
      hint: 'resize it first (in a page: draw it onto a canvas of the input size, see imageToInput)',
    });
  }
  if (image.data.length !== 4 * W * H)
    throw new RlpkdError(`the image has ${image.data.length} values, expected RGBA ${W}×${H}×4`);
  const out = new Float32Array(3 * H * W);
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * input.std[c]);
    const shift = input.mean[c] / input.std[c];
    const base = c * H * W;
    for (let i = 0; i < H * W; i++) out[base + i] = image.data[4 * i + c] * scale - shift;
  }
  return out;
}

/** Something a 2D canvas can draw (HTMLImageElement, ImageBitmap, a canvas, a video frame). */
export type DrawableImage = object;

/** The part of a 2D canvas context used here (typed structurally: the toolkit compiles without DOM types). */
interface Canvas2D {
  drawImage(image: DrawableImage, x: number, y: number, width: number, height: number): void;
  getImageData(x: number, y: number, width: number, height: number): RgbaImage;
}

interface CanvasLike {
  getContext(kind: '2d'): Canvas2D | null;
}

/** A canvas of the given size: an OffscreenCanvas where there is one, else a DOM canvas. */
function makeCanvas(width: number, height: number): CanvasLike {
  const g = globalThis as {
    OffscreenCanvas?: new (w: number, h: number) => CanvasLike;
    document?: { createElement(tag: 'canvas'): CanvasLike & { width: number; height: number } };
  };
  if (g.OffscreenCanvas) return new g.OffscreenCanvas(width, height);
  if (!g.document) throw new RlpkdError('imageToInput needs a browser (no canvas here)');
  return Object.assign(g.document.createElement('canvas'), { width, height });
}

/**
 * Browser only: draws an image stretched to the input size on a canvas (as the training loader's
 * resize does: fill, no crop) and preprocesses its pixels. Returns the input and the resized pixels.
 */
export function imageToInput(
  source: DrawableImage,
  input: BundleMeta['input'],
): { tensor: Float32Array; pixels: RgbaImage } {
  const ctx = makeCanvas(input.width, input.height).getContext('2d');
  if (!ctx) throw new RlpkdError('this browser gives no 2D canvas context to resize the image');
  ctx.drawImage(source, 0, 0, input.width, input.height);
  const pixels = ctx.getImageData(0, 0, input.width, input.height);
  return { tensor: preprocessImage(pixels, input), pixels };
}
