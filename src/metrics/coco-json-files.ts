/**
 * Reading COCO files for the metrics: an instances JSON (ground truth) and a results JSON (a list of
 * detections, as COCO's evaluation server takes them). Validation only; the evaluation is `evaluateCoco`.
 */
import { z } from 'zod';
import { InputFileError } from '../errors';
import { readInputFile } from '../onnx/model-io';
import { evaluateCoco, type CocoDetection, type CocoEvalResult, type CocoGroundTruth } from './coco-eval';

const id = z.number().int();
const bbox = z.tuple([z.number(), z.number(), z.number().min(0), z.number().min(0)]);

const groundTruthSchema = z.looseObject({
  images: z.array(z.looseObject({ id })),
  annotations: z
    .array(
      z.looseObject({
        id,
        image_id: id,
        category_id: id,
        bbox,
        area: z.number().min(0).optional(),
        iscrowd: z.union([z.literal(0), z.literal(1), z.boolean()]).optional(),
      }),
    )
    .default([]),
  categories: z.array(z.looseObject({ id, name: z.string().optional() })),
});

const resultsSchema = z.array(
  z.looseObject({ image_id: id, category_id: id, bbox, score: z.number().refine(Number.isFinite) }),
);

const GT_HINT = 'pass a COCO instances JSON (images, annotations with id/bbox/area/iscrowd, categories)';
const DT_HINT =
  'pass COCO results: a JSON list of {image_id, category_id, bbox: [x, y, w, h], score} (bbox results only)';

/** Reads and validates a COCO instances file (only what bbox evaluation needs is checked). */
export function readCocoGroundTruthFile(file: string): CocoGroundTruth {
  return parseJsonFile(file, 'COCO ground truth', groundTruthSchema, GT_HINT);
}

/** Reads and validates a COCO results file (a list of detections). */
export function readCocoResultsFile(file: string): CocoDetection[] {
  return parseJsonFile(file, 'COCO results', resultsSchema, DT_HINT);
}

/** `evaluateCoco` on a ground-truth file and a results file. */
export function evaluateCocoFiles(gtFile: string, dtFile: string): CocoEvalResult {
  return evaluateCoco(readCocoGroundTruthFile(gtFile), readCocoResultsFile(dtFile));
}

/** JSON.parse + schema check, every failure one InputFileError naming the file and the offending path. */
function parseJsonFile<T>(file: string, what: string, schema: z.ZodType<T>, hint: string): T {
  let json: unknown;
  try {
    json = JSON.parse(readInputFile(file, what).toString('utf8'));
  } catch (err) {
    if (err instanceof InputFileError) throw err;
    throw new InputFileError(`${what} '${file}' is not valid JSON: ${(err as Error).message}`, { hint });
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
  throw new InputFileError(
    `${what} '${file}': ${where.replace(/^\./, '') || 'top level'}: ${issue.message}`,
    {
      hint,
    },
  );
}
