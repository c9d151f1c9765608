/**
 * COCO-format detection datasets: `<root>/<split>/` images and an instances JSON (default
 * `<root>/annotations/instances_<split>.json`; a configured one is relative to the root) with images, annotations (bbox [x, y, w, h], category_id,
 * iscrowd, area) and categories. Classes are the categories sorted by id; ids map to contiguous labels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { InputFileError } from '../errors';
import { readInputFile } from '../onnx/model-io';
import { isDir, requireDir } from './dataset-files';
import type { BoxAnnotation, Dataset, ImageRecord } from './types';

const instancesSchema = z.looseObject({
  images: z.array(
    z.looseObject({
      id: z.number().int(),
      file_name: z.string().min(1),
      width: z.number().positive().optional(),
      height: z.number().positive().optional(),
    }),
  ),
  annotations: z
    .array(
      z.looseObject({
        id: z.number().int().optional(),
        image_id: z.number().int(),
        category_id: z.number().int(),
        bbox: z.tuple([z.number(), z.number(), z.number().min(0), z.number().min(0)]),
        iscrowd: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
        area: z.number().min(0).optional(),
      }),
    )
    .default([]),
  // Distillation reads no labels: a JSON listing only images (no annotations, no categories) is accepted.
  categories: z.array(z.looseObject({ id: z.number().int(), name: z.string() })).default([]),
});

/** Where a COCO split's images and annotations live; a relative `annotations` path starts at `root`. */
export function cocoPaths(
  root: string,
  split: string,
  annotations?: string,
): { imageDir: string; annotations: string } {
  return {
    imageDir: path.join(root, split),
    annotations:
      annotations !== undefined
        ? path.resolve(root, annotations)
        : path.join(root, 'annotations', `instances_${split}.json`),
  };
}

/** Which config keys name a COCO split's image folder and JSON (for hints). */
export interface CocoKeys {
  split: string;
  annotations: string;
}

/** What is missing of a COCO split (its instances JSON or its image folder), or undefined when neither is. */
function cocoSplitProblem(paths: { imageDir: string; annotations: string }): string | undefined {
  if (!fs.existsSync(paths.annotations)) return `annotations '${paths.annotations}' do not exist`;
  if (!isDir(paths.imageDir)) return `image folder '${paths.imageDir}' does not exist`;
  return undefined;
}

/** Reads a COCO split. Images listed but absent are kept (the loader skips or fails per data.on_corrupt). */
export function readCoco(
  root: string,
  split: string,
  annotationsFile?: string,
  keys: CocoKeys = { split: 'data.split', annotations: 'data.annotations' },
): Dataset {
  const hint = `expected ${path.join(root, split)}/ with images and ${path.join(root, 'annotations', `instances_${split}.json`)}`;
  requireDir(root, 'coco dataset root', `set data.root to the COCO folder; ${hint}`);
  const paths = cocoPaths(root, split, annotationsFile);
  const missing = cocoSplitProblem(paths);
  if (missing) {
    throw new InputFileError(`coco ${missing}`, {
      hint: missing.startsWith('annotations')
        ? `${hint}; or set ${keys.annotations} to the instances JSON`
        : `${hint}; set ${keys.split} to the image folder name`,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(readInputFile(paths.annotations, 'coco annotations').toString('utf8'));
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw new InputFileError(
      `coco annotations '${paths.annotations}' are not valid JSON: ${(err as Error).message}`,
    );
  }
  const parsed = instancesSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .slice(1);
    throw new InputFileError(
      `coco annotations '${paths.annotations}': ${where || 'top level'}: ${issue.message}`,
      {
        hint: 'the file must be a COCO instances JSON (images, annotations, categories)',
      },
    );
  }
  const data = parsed.data;
  const categories = [...data.categories].sort((a, b) => a.id - b.id);
  const labelOf = new Map(categories.map((c, i) => [c.id, i]));
  const boxes = new Map<number, BoxAnnotation[]>();
  const imageIds = new Set<number>();
  for (const img of data.images) {
    if (imageIds.has(img.id)) throw bad(paths.annotations, `image id ${img.id} appears twice`);
    imageIds.add(img.id);
    boxes.set(img.id, []);
  }
  data.annotations.forEach((a, i) => {
    const label = labelOf.get(a.category_id);
    if (label === undefined)
      throw bad(paths.annotations, `annotations[${i}] has unknown category_id ${a.category_id}`);
    const list = boxes.get(a.image_id);
    if (!list) throw bad(paths.annotations, `annotations[${i}] refers to unknown image_id ${a.image_id}`);
    const [, , w, h] = a.bbox;
    list.push({
      bbox: [...a.bbox],
      categoryId: a.category_id,
      label,
      iscrowd: a.iscrowd === 1 || a.iscrowd === true,
      area: a.area ?? w * h,
    });
  });
  const records: ImageRecord[] = data.images
    .map((img) => ({
      id: img.file_name,
      file: path.join(paths.imageDir, ...img.file_name.split('/')),
      boxes: boxes.get(img.id)!,
      ...(img.width !== undefined ? { width: img.width } : {}),
      ...(img.height !== undefined ? { height: img.height } : {}),
    }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (records.length === 0) throw bad(paths.annotations, 'lists no images');
  if (!records.some((r) => fs.existsSync(r.file))) {
    throw new InputFileError(
      `none of the ${records.length} images listed in '${paths.annotations}' exist under '${paths.imageDir}' ` +
        `(first: '${records[0]!.id}')`,
      { hint: 'set data.split (the image folder) or data.root so the file_name entries resolve' },
    );
  }
  return { type: 'coco', root, split, classes: categories.map((c) => c.name), records };
}

function bad(file: string, detail: string): InputFileError {
  return new InputFileError(`coco annotations '${file}': ${detail}`, {
    hint: 'the file must be a COCO instances JSON (images, annotations, categories)',
  });
}
