/**
 * The project's figures (`rlpkd bench all`): the train step on builder-made ResNet-FPN graphs (timed in
 * a fresh process, as `bench compare` times it), the Conv-gradient micro-benchmark and the policy's
 * decision throughput.
 */
import * as os from 'node:os';
import { benchPolicyThroughput, type PolicyBenchResult } from '../rl/bench-policy';
import { compareStepOptions, timeTrainStep, type CompareOptions } from './compare';
import { benchConvGrad, type ConvGradBenchResult } from './conv-grad';
import type { TrainStepBenchResult } from './train-step';

/** The three figures and the machine's load while they were taken. */
export interface ProjectFigures {
  trainStep: TrainStepBenchResult & { teacher: string; student: string };
  convGrad: ConvGradBenchResult;
  policy: PolicyBenchResult;
  loadAverage1m: number;
  cpus: number;
}

/** Measures the project's figures one after the other (options as for `compareWithPytorch`, no rounds). */
export async function benchProjectFigures(
  options: Omit<CompareOptions, 'rounds'> = {},
): Promise<ProjectFigures> {
  const teacher = options.teacherArch ?? 'resnet101-fpn';
  const student = options.studentArch ?? 'resnet50-fpn';
  const trainStep = await timeTrainStep(compareStepOptions(options), { inProcess: options.inProcess });
  const threads = options.threads;
  const convGrad = await benchConvGrad(threads ? { threads } : {});
  const policy = await benchPolicyThroughput(threads ? { intraOpNumThreads: threads } : {});
  return {
    trainStep: { ...trainStep, teacher, student },
    convGrad,
    policy,
    loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
    cpus: os.cpus().length,
  };
}
