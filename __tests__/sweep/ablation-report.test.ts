import { ablationMetric } from '../../src/sweep/ablation-metric';
import { ablationMethods, planAblation } from '../../src/sweep/ablation-plan';
import { ablationCsv, ablationMarkdown, assembleAblation, sampleStd } from '../../src/sweep/ablation-report';
import type { AblationManifest, BranchResult } from '../../src/sweep/ablation-store';
import { redisConnection } from '../../src/sweep/job-queue';
import type { TrainSummary } from '../../src/distill/evaluation';

function branch(seed: number, method: string, cost: number, value: number, updates = 6): BranchResult {
  return {
    id: `s${seed}-${method}`,
    seed,
    method,
    runDir: '/x',
    metric: { name: 'AP', value, higherIsBetter: true, source: 'task' },
    meanCost: cost,
    heldOutCost: cost,
    updates,
    images: 4 * updates,
    digest: `d${seed}`,
    trials: method === 'rl' ? 8 : 0,
    updateSeconds: 1,
    branchSeconds: 2,
    seconds: 3,
    phaseSeconds: [1, 1, 1, 0],
  };
}

const manifest = { seeds: [0, 1], levels: ['P4', 'P5'], costs: [0.8, 0.2] } as AblationManifest;

describe('ablation plan', () => {
  it('lists every non-empty subset, then random and rl; random waits for rl', () => {
    expect(
      ablationMethods(['P4', 'P5']).map((m) => (m.kind === 'fixed' ? m.levels.join('+') : m.kind)),
    ).toEqual(['P4', 'P5', 'P4+P5', 'random', 'rl']);
    expect(ablationMethods(['P2', 'P3', 'P4', 'P5'])).toHaveLength(17);
    const jobs = planAblation(['P4', 'P5'], [7]);
    expect(jobs.map((j) => j.id)).toEqual(['s7-phase1', 's7-P4', 's7-P5', 's7-P4+P5', 's7-rl', 's7-random']);
    expect(jobs.find((j) => j.id === 's7-random')!.needs).toEqual(['s7-phase1', 's7-rl']);
    expect(jobs.find((j) => j.id === 's7-P5')!.needs).toEqual(['s7-phase1']);
  });
});

describe('assembleAblation', () => {
  // Seeds 0 and 1; fixed P5 (cost 0.2), P4 (0.8), P4+P5 (1.0); rl at cost 0.5; random at 0.5.
  const results = [
    branch(0, 'P5', 0.2, 10),
    branch(1, 'P5', 0.2, 12),
    branch(0, 'P4', 0.8, 20),
    branch(1, 'P4', 0.8, 22),
    branch(0, 'P4+P5', 1.0, 21),
    branch(1, 'P4+P5', 1.0, 21),
    branch(0, 'rl', 0.5, 18),
    branch(1, 'rl', 0.6, 18),
    branch(0, 'random', 0.5, 14),
    branch(1, 'random', 0.6, 15),
  ];

  it('gives mean ± sample std, the frontier at the rl cost and the winner at <= that cost', () => {
    const r = assembleAblation(manifest, results);
    const row = (m: string) => r.rows.find((x) => x.method === m)!;
    expect(row('P5').metric.mean).toBe(11);
    expect(row('P5').metric.std).toBeCloseTo(Math.SQRT2, 12); // values 10, 12: sqrt(((1)^2 + (1)^2) / 1)
    expect(row('rl').meanCost).toBeCloseTo(0.55, 12);
    // Frontier P5 (0.2, 11) → P4 (0.8, 21), P4+P5 (1.0, 21) is dominated; at 0.55: 11 + 10 · 0.35/0.6.
    const frontier = 11 + (10 * 0.35) / 0.6;
    expect(r.rl.frontier).toBeCloseTo(frontier, 12);
    expect(r.rl.aboveFrontier).toBeCloseTo(18 - frontier, 12);
    // At <= 0.55 the candidates are P5 (11), random (14.5, cost 0.55) and rl (18).
    expect(r.winner.method).toBe('rl');
    expect(r.sameUpdates && r.sameImages).toBe(true);
    expect(r.footer).toContain("Winner at <= the RL policy's cost: the RL policy");
    expect(ablationCsv(r).split('\n')[0]).toBe(
      'method,cost,metric,std,probe,probe_std,updates,update_s,trials,total_s',
    );
    // No branch measured a probe: no probe column, empty CSV cells.
    expect(r.rows.every((x) => x.probe === null)).toBe(true);
    expect(ablationMarkdown(r)).not.toContain('probe');
  });

  it('adds the probe column: mean ± std over the seeds that measured one', () => {
    const probed = results.map((b) => ({ ...b, probe: { name: 'AP', value: b.metric.value / 10 } }));
    const r = assembleAblation(manifest, probed);
    const p5 = r.rows.find((x) => x.method === 'P5')!;
    expect(p5.probe!.mean).toBeCloseTo(1.1, 12);
    expect(p5.probe!.std).toBeCloseTo(Math.SQRT2 / 10, 12);
    expect(ablationMarkdown(r)).toContain('| method | cost | AP | probe AP |');
    expect(ablationMarkdown(r)).toContain('| P5 | 0.200 | 11.00 ± 1.414 | 1.100 ± 0.1414 |');
    const [probeMean, probeStd] = ablationCsv(r).split('\n')[1].split(',').slice(4, 6).map(Number);
    expect(probeMean).toBeCloseTo(1.1, 12);
    expect(probeStd).toBeCloseTo(Math.SQRT2 / 10, 12);
  });

  it('adds COCO AP by object size beside a detection AP where every branch measured it', () => {
    const sized = results.map((b) => ({
      ...b,
      taskValues: { AP: b.metric.value, APs: b.metric.value / 2, APm: b.metric.value + 1, APl: null },
    }));
    const r = assembleAblation(manifest, sized);
    expect(r.bySize).toEqual(['APs', 'APm']); // APl unmeasured (null) in every branch: left out
    const p5 = r.rows.find((x) => x.method === 'P5')!;
    expect(p5.bySize.map((m) => m.name)).toEqual(['APs', 'APm']);
    expect(p5.bySize[0].mean).toBeCloseTo(5.5, 12); // values 5, 6
    expect(p5.bySize[0].std).toBeCloseTo(Math.SQRT1_2, 12);
    expect(p5.bySize[1].mean).toBeCloseTo(12, 12);
    const md = ablationMarkdown(r);
    expect(md).toContain('| method | cost | AP | APs | APm | updates |');
    expect(md).toContain('| P5 | 0.200 | 11.00 ± 1.414 | 5.500 ± 0.7071 | 12.00 ± 1.414 | ');
    expect(md).toContain('APs, APm: COCO AP over objects of area');
    const csv = ablationCsv(r).split('\n');
    expect(csv[0]).toBe(
      'method,cost,metric,std,probe,probe_std,updates,update_s,trials,total_s,APs,APs_std,APm,APm_std',
    );
    const p5Line = csv.find((l) => l.startsWith('P5,'))!.split(',');
    expect(Number(p5Line[10])).toBeCloseTo(5.5, 12);
    expect(Number(p5Line[12])).toBeCloseTo(12, 12);
    // One branch without the values: no size columns at all (a half-measured column would mislead).
    const partial = sized.map((b, i) => (i === 0 ? { ...b, taskValues: undefined } : b));
    expect(assembleAblation(manifest, partial).bySize).toEqual([]);
  });

  it('names a cheaper fixed subset that beats the policy, and flags unequal updates', () => {
    const r = assembleAblation(manifest, [
      ...results.filter((x) => x.method !== 'P5'),
      branch(0, 'P5', 0.2, 30, 5),
      branch(1, 'P5', 0.2, 30),
    ]);
    expect(r.winner.method).toBe('P5');
    expect(r.footer).toContain('P5 (30.00 at cost 0.200), not the RL policy');
    expect(r.sameUpdates).toBe(false);
    expect(r.footer).toContain('NOT equal');
  });

  it('sampleStd is null for one value', () => {
    expect(sampleStd([3])).toBeNull();
    expect(sampleStd([1, 2, 3])).toBeCloseTo(1, 12);
  });
});

describe('ablationMetric', () => {
  const summary = { lossKind: 'mse', lossAfter: 123.5 } as TrainSummary;
  it('takes the task metric of the distilled student when the evaluation has one, else the loss', () => {
    expect(ablationMetric({ summary })).toEqual({
      name: 'held-out distillation loss (mse)',
      value: 123.5,
      higherIsBetter: false,
      source: 'loss',
    });
    const task = (metric: 'AP' | 'mIoU', studentAfter: number | null) => ({
      kind: 'detection' as const,
      metric,
      teacher: 0.5,
      studentBefore: 0,
      studentAfter,
    });
    expect(ablationMetric({ summary, task: task('AP', 0.31) }).value).toBe(0.31);
    expect(ablationMetric({ summary, task: task('mIoU', 0.4) })).toEqual({
      name: 'mIoU',
      value: 0.4,
      higherIsBetter: true,
      source: 'task',
    });
    expect(ablationMetric({ summary, task: task('AP', null) }).source).toBe('loss');
    expect(ablationMetric({ summary, task: null }).source).toBe('loss');
  });
});

describe('redisConnection', () => {
  it('reads host, port, password and db; rejects other URLs with a hint', () => {
    expect(redisConnection('redis://127.0.0.1:6380')).toEqual({
      host: '127.0.0.1',
      port: 6380,
      maxRetriesPerRequest: null,
    });
    expect(redisConnection('redis://:s3cret@h/2')).toMatchObject({
      host: 'h',
      port: 6379,
      password: 's3cret',
      db: 2,
    });
    expect(() => redisConnection('http://h:1')).toThrow(/not a redis:\/\/ URL/);
    expect(() => redisConnection('nonsense')).toThrow(/not a URL/);
  });
});
