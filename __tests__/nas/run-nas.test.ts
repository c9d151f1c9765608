/** `rlpkd nas` end to end on the tiny project: the oracle, a discrete and a differentiable method, regret. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { configFromObject } from '../../src/config/load-config';
import { runNas } from '../../src/nas/run-nas';
import { featuresYardstick } from '../../src/nas/yardstick';
import { selectionCost } from '../../src/analysis/selection-cost';
import { loadModel, saveModel } from '../../src/onnx/model-io';
import { buildFcosHead } from '../../src/heads/fcos-head';
import { headLevelsOf } from '../../src/heads/head-levels';
import type { NasReport } from '../../src/nas/report';
import { Writable } from 'node:stream';
import { runTraining } from '../../src/distill/pipeline';
import { runCli } from '../helpers/run-cli';
import { tempDir, tinyConfig, tinyConfigObject, writeTinyModels } from '../distill/run-fixtures';

describe('rlpkd nas on a tiny project', () => {
  jest.setTimeout(240000);
  const dir = tempDir('nas');
  const models = writeTinyModels(dir);
  const configFile = path.join(dir, 'tiny.yaml');
  fs.writeFileSync(configFile, stringify(tinyConfigObject(dir, models)));
  const config = configFromObject(tinyConfigObject(dir, models), { cwd: dir });
  let oracleFile = '';
  let oracle: NasReport;

  it('exhaustive: every selection scored once, the best is the choice, regret 0, nas.json written', async () => {
    const out = path.join(dir, 'nas-exhaustive');
    const r = await runCli(
      'nas',
      '--method',
      'exhaustive',
      '-c',
      configFile,
      '--proxy-steps',
      '2',
      '--out',
      out,
      '--json',
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    oracle = JSON.parse(r.stdout) as NasReport;
    oracleFile = path.join(out, 'nas.json');
    expect(JSON.parse(fs.readFileSync(oracleFile, 'utf8'))).toEqual(oracle);
    expect(oracle.evaluated).toHaveLength(15);
    expect(new Set(oracle.evaluated.map((e) => e.label)).size).toBe(15);
    expect(oracle.search.evaluations).toBe(15);
    expect(oracle.regret).toBe(0);
    const best = Math.min(...oracle.evaluated.map((e) => e.objective));
    expect(oracle.chosen.objective).toBe(best);
    expect(oracle.oracle!.bestObjective).toBe(best);
    expect(oracle.distillSelection).toBe(`distill.selection: [${oracle.chosen.levels.join(', ')}]`);
    for (const e of oracle.evaluated) {
      // J = L_val/L_val(start) + λ·cost, with the distillation cost of the selected levels.
      expect(e.objective).toBeCloseTo(e.valLoss / oracle.baseLoss + oracle.key.lambda * e.cost, 12);
      const levelSum = e.levels.reduce((a, n) => a + oracle.levelCosts[oracle.levels.indexOf(n)], 0);
      expect(e.cost).toBeCloseTo(levelSum, 12);
    }
    expect(oracle.curve.map((p) => p.index)).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(oracle.search.seconds).toBeGreaterThan(0);
  });

  it('evolution against the oracle file: the same objectives bit for bit, regret from its table', async () => {
    const { report, text } = await runNas({
      config,
      configSource: configFile,
      method: 'evolution',
      proxySteps: 2,
      oracleFile,
      outDir: path.join(dir, 'nas-evolution'),
      settings: { population: 3, sampleSize: 2, cycles: 4 },
    });
    for (const e of report.evaluated) expect(e.objective).toBe(oracle.oracle!.objectives[e.label]);
    expect(report.search.evaluations).toBe(report.evaluated.length);
    expect(report.search.evaluations + report.search.cacheHits).toBe(7);
    expect(report.regret).toBe(oracle.oracle!.objectives[report.chosen.label] - oracle.oracle!.bestObjective);
    expect(report.regret).toBeGreaterThanOrEqual(0);
    expect(text).toContain('EA-LS');
    expect(text).toContain(`regret vs the oracle`);
  });

  it('darts with the oracle in the same run: an unrolled search curve, a scored choice, a regret', async () => {
    const { report } = await runNas({
      config,
      configSource: configFile,
      method: 'darts',
      proxySteps: 2,
      withOracle: true,
      outDir: path.join(dir, 'nas-darts'),
      settings: { steps: 3 },
    });
    expect(report.curveUnit).toBe('step');
    expect(report.curve).toHaveLength(3);
    expect(report.alpha).toHaveLength(4);
    expect(report.search.evaluations).toBe(0);
    expect(report.search.scoringSeconds).toBeGreaterThan(0);
    expect(report.oracleSource).toBe('this run');
    // The oracle run here scores selections exactly as the exhaustive run did.
    expect(report.oracle!.objectives).toEqual(oracle.oracle!.objectives);
    expect(report.chosen.objective).toBe(oracle.oracle!.objectives[report.chosen.label]);
    expect(report.regret).toBe(report.chosen.objective - oracle.oracle!.bestObjective);
  });

  it("scores the same objectives when the run's reward uses the task yardstick (the demo's setting)", async () => {
    const headFile = path.join(dir, 'teacher-head.onnx');
    const head = buildFcosHead({
      levels: headLevelsOf(loadModel(models.teacher), { height: 32, width: 32 }),
      numClasses: 3,
      imageHeight: 32,
      imageWidth: 32,
      seed: 4,
    });
    saveModel(head.model, headFile);
    const object = tinyConfigObject(dir, models) as { models: Record<string, unknown> };
    const taskConfig = configFromObject(
      { ...object, models: { ...object.models, teacher_head: headFile } },
      { cwd: dir, overrides: ['rl.reward.yardstick=task'] },
    );
    expect(taskConfig.rl.reward.yardstick).toBe('task');
    const { report } = await runNas({
      config: taskConfig,
      configSource: configFile,
      method: 'exhaustive',
      proxySteps: 2,
      outDir: path.join(dir, 'nas-task-yardstick'),
    });
    // The NAS objective has its own (features) yardstick: the reward's does not change it.
    expect(report.oracle!.objectives).toEqual(oracle.oracle!.objectives);
  });

  it('takes another yardstick and the inference cost of selection-cost', async () => {
    let losses = 0;
    const { report } = await runNas({
      config,
      configSource: configFile,
      method: 'exhaustive',
      proxySteps: 1,
      cost: 'inference',
      outDir: path.join(dir, 'nas-inference'),
      yardstick: {
        name: 'counted-features',
        create: ({ distiller, batches }) => {
          const inner = featuresYardstick(distiller, batches);
          return { ...inner, name: 'counted-features', loss: () => (losses++, inner.loss()) };
        },
      },
    });
    expect(report.key.yardstick).toBe('counted-features');
    expect(losses).toBe(16); // the start, then one per selection
    const student = loadModel(models.student);
    for (const e of report.evaluated) {
      expect(e.cost).toBe(selectionCost(student, { height: 32, width: 32 }, e.levels).share);
    }
    const cost = (label: string) => report.evaluated.find((e) => e.label === label)!.cost;
    expect(cost('P2+P3+P4+P5')).toBeCloseTo(1, 12);
    // Levels share the trunk: the inference cost is not additive.
    expect(cost('P4+P5')).toBeLessThan(cost('P4') + cost('P5'));
  });

  it("--from-run starts every proxy training from the run's checkpoint (its config by default)", async () => {
    const trained = await runTraining({
      config: tinyConfig(dir, models, {
        run: { name: 'nas-start' },
        distill: { selection: 'all' },
        phases: { pretrain: { epochs: 1 }, joint: { epochs: 0 } },
      }),
      logger: { stream: new Writable({ write: (_c, _e, done) => done() }), progress: 'lines' },
    });
    expect(trained.status).toBe('completed');
    const r = await runCli(
      'nas',
      '--method',
      'random',
      '--from-run',
      trained.runDir,
      '--proxy-steps',
      '1',
      '--samples',
      '2',
      '--json',
    );
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as NasReport;
    expect(report.key.start).toContain(path.join(trained.runDir, 'checkpoints', 'final'));
    expect(report.key.config).toContain(trained.runDir);
    // The distilled student is closer to the teacher than the initial one the oracle started from.
    expect(report.baseLoss).toBeLessThan(oracle.baseLoss);
  });

  it('refuses an oracle scored with other settings, before any work', async () => {
    const r = await runCli(
      'nas',
      '--method',
      'random',
      '-c',
      configFile,
      '--proxy-steps',
      '3',
      '--oracle',
      oracleFile,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('scored selections differently from this run');
    expect(r.stderr).toContain('hint:');
  });
});
