/**
 * GDAS-LS: each step samples hard 0/1 gates (gates.ts's Gumbel-max, temperature annealed linearly from
 * 10 to 0.1 over the search), trains the student on the sampled levels, and updates α through the same
 * unrolled gradient as DARTS-LS with the straight-through derivative of the relaxed sample. This route,
 * not REINFORCE on the validation objective: the unrolled gradient gives every level its own signal at
 * every step for four engine runs, where REINFORCE scores a whole sample with one noisy number and would
 * need a proxy training per sample to have one. The cost term is the sampled selection's cost; its
 * straight-through gradient is the cost difference of turning each level on versus off.
 */
import { annealedTemperature, gumbelGates } from './gates';
import type { GateScheme } from './differentiable-search';
import type { SearchSpace } from './search-space';

/** GDAS-LS's gate scheme over `space`, temperature from `tauMax` to `tauMin`. */
export function gdasGates(space: SearchSpace, tauMax = 10, tauMin = 0.1): GateScheme {
  return {
    name: 'GDAS-LS',
    gates(alpha, step, steps, rng) {
      const temperature = annealedTemperature(step, steps, tauMax, tauMin);
      const s = gumbelGates(alpha, temperature, rng);
      let mask = 0;
      s.hard.forEach((h, l) => (mask |= h << l));
      const costGrad = s.derivative.map(
        (d, l) => (space.cost(mask | (1 << l)) - space.cost(mask & ~(1 << l))) * d,
      );
      return { gates: s.hard, derivative: s.derivative, cost: space.cost(mask), costGrad, temperature };
    },
  };
}
