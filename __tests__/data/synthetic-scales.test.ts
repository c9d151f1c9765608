/**
 * The `scales` scene family: size bins against hand-computed thresholds, deterministic scenes, each kind
 * of scene landing in its bin, boxes / areas / label masks / instance maps that agree with the rendered
 * pixels, and the dataset written through ensureSynthetic and the config with each image's bin.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { configFromObject } from '../../src/config';
import {
  ensureSynthetic,
  imageSizeBin,
  objectSizeBin,
  openDatasetSplits,
  readSynthetic,
  renderScalesScene,
  renderScene,
  syntheticHash,
  type ScalesScene,
  type SyntheticOptions,
} from '../../src/data';

const OPTS: SyntheticOptions = {
  family: 'scales',
  trainImages: 6,
  valImages: 2,
  imageSize: 96,
  minShapes: 1,
  maxShapes: 4,
  seed: 7,
};

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-scales-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('size bins', () => {
  it('split at 1/256 and 1/16 of the image area (hand-computed at 96² = 9216 px: 36 and 576 px)', () => {
    expect(objectSizeBin(35, 9216)).toBe('small');
    expect(objectSizeBin(36, 9216)).toBe('medium');
    expect(objectSizeBin(575, 9216)).toBe('medium');
    expect(objectSizeBin(576, 9216)).toBe('large');
    expect(objectSizeBin(1, 64 * 64)).toBe('small');
    expect(objectSizeBin(16, 64 * 64)).toBe('medium'); // 16 / 4096 = 1/256
    expect(objectSizeBin(256, 64 * 64)).toBe('large');
  });

  it("gives an image its objects' common bin, else mixed", () => {
    expect(imageSizeBin(['small', 'small'])).toBe('small');
    expect(imageSizeBin(['large'])).toBe('large');
    expect(imageSizeBin(['large', 'small'])).toBe('mixed');
    expect(imageSizeBin([])).toBe('mixed');
  });
});

describe('renderScalesScene', () => {
  const scenes: ScalesScene[] = Array.from({ length: 80 }, (_, i) => renderScalesScene(OPTS, 'train', i));

  it('is deterministic in (seed, split, index)', () => {
    const again = renderScalesScene(OPTS, 'train', 3);
    expect(Buffer.from(again.rgb).equals(Buffer.from(scenes[3]!.rgb))).toBe(true);
    expect(Buffer.from(again.mask).equals(Buffer.from(scenes[3]!.mask))).toBe(true);
    expect(again.boxes).toEqual(scenes[3]!.boxes);
    expect(Buffer.from(scenes[4]!.rgb).equals(Buffer.from(scenes[3]!.rgb))).toBe(false);
    const otherSeed = renderScalesScene({ ...OPTS, seed: 8 }, 'train', 3);
    expect(Buffer.from(otherSeed.rgb).equals(Buffer.from(scenes[3]!.rgb))).toBe(false);
    const val = renderScalesScene(OPTS, 'val', 3);
    expect(Buffer.from(val.rgb).equals(Buffer.from(scenes[3]!.rgb))).toBe(false);
  });

  it('draws every kind, and each kind of scene lands in its bin', () => {
    const byKind = new Map<string, ScalesScene[]>();
    for (const s of scenes) byKind.set(s.kind, [...(byKind.get(s.kind) ?? []), s]);
    expect([...byKind.keys()].sort()).toEqual(['large', 'medium', 'mixed', 'small']);
    const agree = (kind: string): number =>
      byKind.get(kind)!.filter((s) => s.sizeBin === kind).length / byKind.get(kind)!.length;
    // Tiny objects are kept apart and mixed scenes hold at least a large (drawn first) and tiny ones on top.
    expect(agree('small')).toBe(1);
    expect(agree('mixed')).toBe(1);
    // Medium and large objects may hide part of each other.
    expect(agree('medium')).toBeGreaterThanOrEqual(0.8);
    expect(agree('large')).toBeGreaterThanOrEqual(0.8);
    for (const s of scenes) {
      expect(s.objectBins).toEqual(s.boxes.map((b) => objectSizeBin(b.area, 96 * 96)));
      expect(s.sizeBin).toBe(imageSizeBin(s.objectBins));
      s.boxes.forEach((b, k) => {
        // A tiny object fits inside one P3 cell (stride 8) at 96²: the coarse levels cannot resolve it.
        if (s.objectBins[k] === 'small') expect(Math.max(b.bbox[2], b.bbox[3])).toBeLessThan(96 / 12);
      });
    }
    const small = byKind.get('small')!;
    expect(Math.min(...small.map((s) => s.boxes.length))).toBeGreaterThanOrEqual(3);
  });

  it('has boxes, areas, label mask and instance map that agree with the rendered pixels', () => {
    // Counted, then asserted once: a per-pixel expect() would take a minute.
    let wrongMask = 0;
    let dullObjectPixels = 0;
    let objectPixels = 0;
    for (const s of scenes) {
      const n = s.size;
      const extent = s.boxes.map(() => ({ minX: n, minY: n, maxX: -1, maxY: -1, area: 0 }));
      for (let p = 0; p < n * n; p++) {
        const k = s.instances[p]!;
        if (k < 0) {
          if (s.mask[p] !== 0) wrongMask++;
          continue;
        }
        if (s.mask[p] !== s.boxes[k]!.label + 1) wrongMask++;
        // Object pixels carry the object colour: bright channels with one dark one (clutter is grey).
        const rgb = [s.rgb[3 * p]!, s.rgb[3 * p + 1]!, s.rgb[3 * p + 2]!];
        if (Math.max(...rgb) - Math.min(...rgb) < 28) dullObjectPixels++;
        objectPixels++;
        const x = p % n;
        const y = (p - x) / n;
        const e = extent[k]!;
        e.minX = Math.min(e.minX, x);
        e.maxX = Math.max(e.maxX, x);
        e.minY = Math.min(e.minY, y);
        e.maxY = Math.max(e.maxY, y);
        e.area++;
      }
      const expected = extent.map((e, k) => ({
        bbox: [e.minX, e.minY, e.maxX - e.minX + 1, e.maxY - e.minY + 1],
        area: e.area,
        categoryId: s.boxes[k]!.label + 1,
      }));
      expect(s.boxes.map((b) => ({ bbox: b.bbox, area: b.area, categoryId: b.categoryId }))).toEqual(
        expected,
      );
    }
    expect(objectPixels).toBeGreaterThan(10_000);
    expect({ wrongMask, dullObjectPixels }).toEqual({ wrongMask: 0, dullObjectPixels: 0 });
  });

  it('leaves the shapes family as it was', () => {
    const shapes = { ...OPTS, family: 'shapes' as const };
    const { family: _omit, ...legacy } = shapes;
    expect(syntheticHash(shapes)).toBe(syntheticHash(legacy));
    expect(syntheticHash(OPTS)).not.toBe(syntheticHash(shapes));
    // The key of the default options before scene families existed.
    expect(
      syntheticHash({ trainImages: 256, valImages: 64, imageSize: 128, minShapes: 1, maxShapes: 4, seed: 0 }),
    ).toBe('74647cce487b90c7');
    expect(renderScene(shapes, 'train', 0).sizeBin).toBeUndefined();
  });
});

describe('scales datasets on disk', () => {
  it('writes images, masks and per-image / per-object size bins that readSynthetic returns', async () => {
    const dir = await ensureSynthetic(tmp, OPTS);
    expect(path.basename(dir)).toBe(syntheticHash(OPTS));
    const ds = readSynthetic(dir, 'train');
    expect(ds.records).toHaveLength(6);
    const json = JSON.parse(
      fs.readFileSync(path.join(dir, 'annotations', 'instances_train.json'), 'utf8'),
    ) as {
      annotations: { image_id: number; size_bin: string }[];
    };
    for (let i = 0; i < ds.records.length; i++) {
      const rec = ds.records[i]!;
      const scene = renderScalesScene(OPTS, 'train', i);
      expect(rec.sizeBin).toBe(scene.sizeBin);
      expect(rec.boxes).toEqual(scene.boxes);
      expect(json.annotations.filter((a) => a.image_id === i + 1).map((a) => a.size_bin)).toEqual(
        scene.objectBins,
      );
      expect(Buffer.compare(await sharp(rec.file).raw().toBuffer(), Buffer.from(scene.rgb))).toBe(0);
      const mask = await sharp(rec.mask!).extractChannel(0).raw().toBuffer();
      expect(Buffer.compare(mask, Buffer.from(scene.mask))).toBe(0);
    }
  });

  it('is chosen by data.synthetic.family in the config', async () => {
    const cfg = configFromObject({
      models: { teacher: 't', student: 's' },
      data: {
        type: 'synthetic',
        root: tmp,
        synthetic: { family: 'scales', train_images: 3, val_images: 2, image_size: 32 },
      },
    });
    const splits = await openDatasetSplits(cfg.data);
    expect(splits.train.records.every((r) => r.sizeBin !== undefined)).toBe(true);
    expect(splits.val.records).toHaveLength(2);
    expect(() =>
      configFromObject({ models: { teacher: 't', student: 's' }, data: { synthetic: { family: 'sizes' } } }),
    ).toThrow(/family/);
  });
});
