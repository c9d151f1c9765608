/**
 * What `--tables` adds to an ablation's plan: one NAS search job per method of Tables 1–2 and one branch
 * job per Table 4/5 variant whose config differs from its base method's. A variant that would train
 * exactly what its base method trains (compared as resolved branch configs) is read from the base job;
 * the tables say so. Clipping variants count as different unless the config itself clips (their norm is
 * then the config's; otherwise it is measured on the baseline variant's run, so they wait for it and
 * cannot equal an unclipped base).
 */
import type { RunConfig } from '../config/schema';
import { stableJson } from '../util/content-hash';
import { branchConfig } from './ablation-config';
import { TABLE_NAS_METHODS, methodName, type AblationMethod, type ExtraMethod } from './ablation-plan';
import {
  TABLE_VARIANTS,
  VARIANT_BASE,
  variantClips,
  variantMethodName,
  type TableVariant,
} from './table-variants';

/** Where each variant's results come from: its own job's method, or its base method's. */
export interface TableVariantSource {
  variant: TableVariant;
  /** The method whose results the tables read (`rl@lambda0`, or `rl` when it coincides). */
  method: string;
  /** True when the variant trains what its base method trains (no job of its own). */
  sameAsBase: boolean;
}

/** The base method a variant modifies, as a method. */
function baseMethod(variant: TableVariant, levels: readonly string[]): AblationMethod {
  return VARIANT_BASE[variant] === 'rl' ? { kind: 'rl' } : { kind: 'fixed', levels: [...levels] };
}

/** Each variant's source for `config` (see module doc). */
export function tableVariantSources(config: RunConfig, levels: readonly string[]): TableVariantSource[] {
  // The clip norm a clipping variant gets when the config does not set one is measured later; -1 (no
  // valid norm, and unlike NaN not written as null) stands for it.
  const clip = config.distill.grad_clip ?? -1;
  const seed = config.run.seed;
  return TABLE_VARIANTS.map((variant) => {
    const base = baseMethod(variant, levels);
    const same =
      stableJson(branchConfig(config, seed, { ...base, variant } as AblationMethod, undefined, clip)) ===
      stableJson(branchConfig(config, seed, base));
    const baseName = methodName(base);
    return {
      variant,
      method: same ? baseName : variantMethodName(baseName, variant),
      sameAsBase: same,
    };
  });
}

/** The method whose run measures the clipping norm when the config sets none (the baseline variant's). */
export function clipSourceMethod(config: RunConfig, levels: readonly string[]): string {
  return tableVariantSources(config, levels).find((s) => s.variant === 'baseline')!.method;
}

/**
 * The methods `--tables` adds to the plan: the NAS searches, then the variants with jobs of their own
 * (the clipping ones after the baseline when they measure their norm on it).
 */
export function tableExtraMethods(config: RunConfig, levels: readonly string[]): ExtraMethod[] {
  const measured = config.distill.grad_clip === null;
  const clipSource = clipSourceMethod(config, levels);
  return [
    ...TABLE_NAS_METHODS.map((m) => ({ method: methodName({ kind: 'nas', search: m }), after: [] })),
    ...tableVariantSources(config, levels)
      .filter((s) => !s.sameAsBase)
      .map((s) => ({
        method: s.method,
        after: measured && variantClips(s.variant) ? [clipSource] : [],
      })),
  ];
}
