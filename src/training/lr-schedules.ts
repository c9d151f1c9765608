/**
 * Learning-rate schedules as plain data (so a worker-thread session can receive them) plus the function
 * that evaluates one at an optimizer step. Steps are 1-based: step t is the t-th optimizer update, the
 * same count AdamW's bias correction uses, so a schedule resumes exactly from a checkpoint's step.
 */
import { RlpkdError } from '../errors';

/** The learning rate never changes. */
export interface ConstantSchedule {
  type: 'constant';
}

/** Linear warmup to the base rate, then a half cosine down to `minLr` at `totalSteps` (held after). */
export interface CosineSchedule {
  type: 'cosine';
  totalSteps: number;
  /** Steps of linear warmup: step t ≤ warmupSteps uses base·t/warmupSteps (default 0). */
  warmupSteps?: number;
  /** Rate at and after `totalSteps` (default 0). */
  minLr?: number;
}

/** PyTorch StepLR: the rate is multiplied by `gamma` every `stepSize` optimizer steps. */
export interface StepSchedule {
  type: 'step';
  stepSize: number;
  /** Default 0.1, as in PyTorch. */
  gamma?: number;
}

export type LrScheduleConfig = ConstantSchedule | CosineSchedule | StepSchedule;

/** A schedule bound to a base rate: step (1-based) → learning rate. */
export type LrSchedule = (step: number) => number;

function positiveInteger(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new RlpkdError(`learning-rate schedule: ${what} must be a positive integer, got ${value}`);
  }
}

/** Checks a schedule's fields and fails with a message naming the bad one. */
export function validateLrSchedule(config: LrScheduleConfig): void {
  switch (config.type) {
    case 'constant':
      return;
    case 'cosine': {
      positiveInteger(config.totalSteps, 'cosine totalSteps');
      const warmup = config.warmupSteps ?? 0;
      if (!Number.isInteger(warmup) || warmup < 0 || warmup >= config.totalSteps) {
        throw new RlpkdError(
          `learning-rate schedule: cosine warmupSteps must be an integer in [0, totalSteps), got ${warmup} with totalSteps ${config.totalSteps}`,
        );
      }
      if ((config.minLr ?? 0) < 0) {
        throw new RlpkdError(`learning-rate schedule: cosine minLr must be ≥ 0, got ${config.minLr}`);
      }
      return;
    }
    case 'step':
      positiveInteger(config.stepSize, 'step stepSize');
      if (!((config.gamma ?? 0.1) > 0)) {
        throw new RlpkdError(`learning-rate schedule: step gamma must be > 0, got ${config.gamma}`);
      }
      return;
    default:
      throw new RlpkdError(
        `learning-rate schedule: unknown type '${(config as { type: string }).type}' (constant | cosine | step)`,
      );
  }
}

/** Binds a schedule to a base learning rate; the result gives the rate of optimizer step t (t ≥ 1). */
export function createLrSchedule(config: LrScheduleConfig, baseLr: number): LrSchedule {
  validateLrSchedule(config);
  switch (config.type) {
    case 'constant':
      return () => baseLr;
    case 'cosine': {
      const warmup = config.warmupSteps ?? 0;
      const minLr = config.minLr ?? 0;
      const span = config.totalSteps - warmup;
      return (t) => {
        if (t <= warmup) return (baseLr * t) / warmup;
        const progress = Math.min(1, (t - warmup) / span);
        return minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
      };
    }
    case 'step': {
      const gamma = config.gamma ?? 0.1;
      return (t) => baseLr * Math.pow(gamma, Math.floor((Math.max(1, t) - 1) / config.stepSize));
    }
  }
}
