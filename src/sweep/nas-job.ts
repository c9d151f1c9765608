/**
 * A NAS search job of `rlpkd ablate --tables` (Tables 1 and 2): the method searches once per seed, every
 * proxy training starting from the seed's phase-1 checkpoint (the point every branch starts from), and
 * writes its nas.json into the job's folder. The chosen selection is always one of the fixed subsets the
 * ablation trains (the search space is exactly those subsets), so its training is that subset's branch
 * job: the tables read it from there. A killed search has no checkpoint and simply runs again (the proxy
 * trainings are deterministic, so it chooses the same).
 */
import * as path from 'node:path';
import { runNas, NAS_DEFAULTS } from '../nas/run-nas';
import type { MethodSettings } from '../nas/methods';
import type { JobRunOptions } from './ablation-job';
import type { AblationJob, TableNasMethod } from './ablation-plan';
import type { AblationManifest, AblationStore, NasJobResult } from './ablation-store';

/**
 * What `--quick` shortens in the searches: proxy trainings of 4 student steps (default 12), 8 architecture
 * steps for DARTS/GDAS (24), evolution with a population of 4, tournaments of 2 and 4 cycles (6, 3, 10).
 */
export const QUICK_NAS = {
  proxySteps: 4,
  settings: { steps: 8, population: 4, sampleSize: 2, cycles: 4 } satisfies Partial<MethodSettings>,
} as const;

/** Runs the search of `job` (see module doc). */
export async function runNasJob(
  store: AblationStore,
  m: AblationManifest,
  job: AblationJob,
  search: TableNasMethod,
  options: JobRunOptions,
): Promise<NasJobResult> {
  const phaseOne = store.phaseOneOf(job);
  await options.onProgress?.({ job: job.id, stage: 'training' });
  const config = structuredClone(m.config);
  config.run.seed = job.seed;
  const proxySteps = m.quick ? QUICK_NAS.proxySteps : NAS_DEFAULTS.proxySteps;
  const r = await runNas({
    config,
    configSource: [...m.sources, `rlpkd ablate --tables: ${job.id}`].join(' '),
    method: search,
    fromRun: { run: phaseOne.runDir, checkpoint: path.basename(phaseOne.checkpoint) },
    proxySteps,
    outDir: store.runDir(job.id),
    ...(m.quick ? { settings: { ...QUICK_NAS.settings } } : {}),
  });
  const chosen = r.report.chosen;
  return {
    id: job.id,
    seed: job.seed,
    method: job.method,
    search,
    file: r.file,
    chosen: m.levels.filter((l) => chosen.levels.includes(l)),
    chosenMethod: chosen.label,
    objective: chosen.objective,
    cost: chosen.cost,
    searchSeconds: r.report.search.seconds,
    ep: r.report.search.ep,
    proxySteps,
  };
}
