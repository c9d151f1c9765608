import { writeNormalizedChw } from '../../src/data/image-loader';
import { wasmThreads } from '../../src/web/ort-web';
import { preprocessImage } from '../../src/web/preprocess';

const input = {
  name: 'images',
  height: 2,
  width: 3,
  mean: [0.5, 0.25, 0] as [number, number, number],
  std: [0.5, 0.25, 2] as [number, number, number],
};

describe('preprocessImage', () => {
  it('normalizes RGBA pixels like the training loader (alpha dropped), by hand and against writeNormalizedChw', () => {
    const rgba = Uint8ClampedArray.from({ length: 4 * 6 }, (_, i) => (i * 37) % 256);
    const got = preprocessImage({ width: 3, height: 2, data: rgba }, input);
    // Pixel 1, channel 0: value 4·37 = 148 → (148/255 − 0.5)/0.5.
    expect(got[1]).toBeCloseTo((148 / 255 - 0.5) / 0.5, 6);
    const rgb = new Uint8Array(3 * 6);
    for (let i = 0; i < 6; i++) for (let c = 0; c < 3; c++) rgb[3 * i + c] = rgba[4 * i + c];
    const want = new Float32Array(3 * 6);
    writeNormalizedChw(rgb, input, want, 0);
    expect(Array.from(got)).toEqual(Array.from(want));
  });

  it('refuses an image of another size, naming both', () => {
    expect(() => preprocessImage({ width: 2, height: 2, data: new Uint8Array(16) }, input)).toThrow(
      /the image is 2×2, the student takes 3×2/,
    );
  });
});

describe('wasmThreads', () => {
  it('uses threads only on a cross-origin isolated page', () => {
    expect(wasmThreads({ crossOriginIsolated: false, webgpu: false, cores: 8 })).toBe(1);
    expect(wasmThreads({ crossOriginIsolated: true, webgpu: false, cores: 8 })).toBe(4);
    expect(wasmThreads({ crossOriginIsolated: true, webgpu: false, cores: 2 })).toBe(2);
    expect(() => wasmThreads({ crossOriginIsolated: false, webgpu: false, cores: 8 }, 2)).toThrow(
      /cross-origin isolated/,
    );
  });
});
