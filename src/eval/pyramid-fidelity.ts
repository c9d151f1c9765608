/**
 * Per-level fidelity of each student backbone to the teacher on the held-out images: every backbone runs
 * on the same decoded images, batch by batch, and each distilled level of the student is compared with the
 * teacher's (src/eval/level-fidelity.ts). A level whose student map has another shape than the teacher's
 * (the run distilled it through a 1×1 adapter, which the exported student leaves out) is null, with why.
 */
import { imageInput } from '../analysis/pyramid';
import type { LevelPair } from '../distill/level-matching';
import { createSession, type ExecutionProviderName, type GraphSession } from '../runtime/session';
import type { HostTensor } from '../runtime/tensors';
import type { EvalBackbone, StudentName } from './backbones';
import { LevelFidelityAccumulator } from './level-fidelity';

/** Fidelity of one student backbone, per level (level order; null where not comparable). */
export interface BackboneFidelity {
  mse: (number | null)[];
  cosine: (number | null)[];
}

/** Fidelity of every student backbone to the teacher. */
export interface FidelityReport {
  levels: string[];
  images: number;
  backbones: Partial<Record<StudentName, BackboneFidelity>>;
  /** Why a level is null, by level name. */
  notes: Record<string, string>;
}

/** Runs a session over images in batches, handing each batch's requested outputs to `onBatch`. */
async function forEachBatch(
  session: GraphSession,
  input: string,
  images: HostTensor,
  batchSize: number,
  outputs: readonly string[],
  onBatch: (start: number, out: Record<string, HostTensor>) => void,
): Promise<void> {
  const [M, C, H, W] = images.dims as [number, number, number, number];
  const per = C * H * W;
  const data = images.data as Float32Array;
  for (let start = 0; start < M; start += batchSize) {
    const n = Math.min(batchSize, M - start);
    const feeds = { [input]: { data: data.subarray(start * per, (start + n) * per), dims: [n, C, H, W] } };
    onBatch(start, await session.run(feeds, outputs));
  }
}

/** The fidelity of each student in `backbones` to the teacher on `images` (see module doc). */
export async function pyramidFidelity(
  backbones: readonly EvalBackbone[],
  pairs: readonly LevelPair[],
  images: HostTensor,
  options: { batchSize: number; ep?: ExecutionProviderName },
): Promise<FidelityReport> {
  const teacher = backbones.find((b) => b.name === 'teacher')!;
  const M = images.dims[0]!;
  const notes: Record<string, string> = {};
  for (const p of pairs) {
    if (p.student.channels !== p.teacher.channels) {
      notes[p.name] =
        `the student has ${p.student.channels} channels, the teacher ${p.teacher.channels} (distilled through an ` +
        'adapter the exported student leaves out)';
    }
  }
  const comparable = pairs.filter((p) => !notes[p.name]);
  const report: FidelityReport = { levels: pairs.map((p) => p.name), images: M, backbones: {}, notes };
  if (comparable.length === 0) {
    for (const b of backbones) {
      if (b.name !== 'teacher')
        report.backbones[b.name] = { mse: pairs.map(() => null), cosine: pairs.map(() => null) };
    }
    return report;
  }
  // The teacher's levels for all images, kept while each student runs (held-out splits are small).
  const teacherMaps = new Map<string, Float32Array[]>();
  const ep = options.ep ?? 'cpu';
  const ts = await createSession(teacher.model, { executionProvider: ep });
  try {
    await forEachBatch(
      ts,
      imageInput(teacher.model).name,
      images,
      options.batchSize,
      comparable.map((p) => p.teacher.output),
      (_, out) => {
        for (const p of comparable) {
          const list = teacherMaps.get(p.name) ?? [];
          list.push(out[p.teacher.output]!.data as Float32Array);
          teacherMaps.set(p.name, list);
        }
      },
    );
  } finally {
    await ts.release();
  }
  for (const b of backbones) {
    if (b.name === 'teacher') continue;
    const acc = comparable.map((p) => new LevelFidelityAccumulator(p.name));
    const s = await createSession(b.model, { executionProvider: ep });
    let batch = 0;
    try {
      await forEachBatch(
        s,
        imageInput(b.model).name,
        images,
        options.batchSize,
        comparable.map((p) => p.student.output),
        (start, out) => {
          const n = Math.min(options.batchSize, M - start);
          comparable.forEach((p, k) =>
            acc[k]!.add(out[p.student.output]!.data as Float32Array, teacherMaps.get(p.name)![batch]!, n),
          );
          batch++;
        },
      );
    } finally {
      await s.release();
    }
    const results = new Map(comparable.map((p, k) => [p.name, acc[k]!.result()]));
    report.backbones[b.name] = {
      mse: pairs.map((p) => results.get(p.name)?.mse ?? null),
      cosine: pairs.map((p) => results.get(p.name)?.cosine ?? null),
    };
  }
  return report;
}
