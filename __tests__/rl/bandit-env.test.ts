import { DecisionKind, decisionKinds } from '../../src/rl/bernoulli';
import {
  banditReward,
  ContextualBanditEnv,
  generateBanditTask,
  SEED_LEVEL_COSTS,
} from '../../src/rl/bandit-env';
import { validateVecEnv } from '../../src/rl/vec-env';

describe('ContextualBanditEnv', () => {
  it('gives each context a different best subset', () => {
    const task = generateBanditTask(4, SEED_LEVEL_COSTS, 0.5, 0);
    const bestOf = (c: number): number => {
      let best = -Infinity;
      let arg = 0;
      for (let m = 1; m < 16; m++) {
        const a = [0, 1, 2, 3].map((l) => (m >> l) & 1);
        const r = banditReward(task, SEED_LEVEL_COSTS, c, a);
        if (r > best) [best, arg] = [r, m];
      }
      return arg;
    };
    expect(new Set([0, 1, 2, 3].map(bestOf)).size).toBe(4);
  });

  it('runs sequential episodes: zero reward until the last level, then the subset reward', async () => {
    const env = new ContextualBanditEnv({ numEnvs: 3, actionMode: 'sequential', seed: 1, budget: [0.3, 1] });
    validateVecEnv(env);
    expect(env.stateDim).toBe(8 + 4 + 1);
    let s = await env.reset();
    const acts = [1, 0, 1, 1];
    for (let k = 0; k < 4; k++) {
      const out = await env.step(Uint8Array.from([acts[k], 0, 1]));
      if (k < 3) {
        expect(Array.from(out.dones)).toEqual([0, 0, 0]);
        expect(Array.from(out.rewards)).toEqual([0, 0, 0]);
        // The selected-so-far mask and the remaining budget are part of the state.
        expect(out.states[13 * 0 + 8 + k]).toBe(acts[k]);
        expect(out.states[8 + 4]).toBeCloseTo(
          s.budgets[0] - SEED_LEVEL_COSTS.slice(0, k + 1).reduce((a, c, i) => a + c * acts[i], 0),
          6,
        );
      } else {
        expect(Array.from(out.dones)).toEqual([1, 1, 1]);
        const ep = out.infos[0].episode!;
        expect(ep.selectedLevels).toEqual(['level0', 'level2', 'level3']);
        expect(out.rewards[0]).toBeCloseTo(banditReward(env.task, env.costs, ep.context, acts), 12);
        expect(ep.usedCost + ep.savedCost).toBeCloseTo(1, 12);
        expect(ep.optimalReward).toBeGreaterThanOrEqual(out.rewards[2] - 1e-12);
        // Auto-reset: the returned state belongs to the next episode (nothing selected yet).
        expect(Array.from(out.states.subarray(8, 12))).toEqual([0, 0, 0, 0]);
      }
      s = { states: out.states, budgets: out.budgets };
    }
  });

  it('computes the optimum over the subsets the policy may choose under the budget', () => {
    const env = new ContextualBanditEnv({ numEnvs: 1, actionMode: 'independent', seed: 1 });
    const c = { costs: env.costs, minLevels: 1 };
    for (const budget of [0.1, 0.3, 1]) {
      for (let ctx = 0; ctx < 4; ctx++) {
        let best = -Infinity;
        for (let m = 0; m < 16; m++) {
          const a = [0, 1, 2, 3].map((l) => (m >> l) & 1);
          const kinds = decisionKinds(a, budget, c);
          const ok = a.every((x, k) =>
            kinds[k] === DecisionKind.ForcedOn
              ? x === 1
              : kinds[k] === DecisionKind.ForcedOff
                ? x === 0
                : true,
          );
          if (ok) best = Math.max(best, banditReward(env.task, env.costs, ctx, a));
        }
        expect(env.optimalReward(ctx, budget)).toBe(best);
      }
    }
  });
});
