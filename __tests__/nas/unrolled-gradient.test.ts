import { architectureGradientByDifferences, unrolledWeightGradient } from '../../src/nas/unrolled-gradient';
import { threeLevelToy, type ToyProblem } from './toy-problem';

// Level 0 pulls w toward the validation target, level 1 away from it, level 2 sideways.
function toy(): ToyProblem {
  return threeLevelToy([1, 1, 0.25, 0.25], [0.125, -0.25, 0.5, 0]);
}

describe('DARTS unrolled architecture gradient (loss-only gates)', () => {
  const gates = [0.5, 0.5, 0.5];
  const xi = 0.25;

  it('the finite-difference Hessian-vector product matches the closed form in float64', async () => {
    const p = toy();
    const u = await unrolledWeightGradient(p, gates, { xi });
    const exact = p.exactUnrolled(gates, xi);
    // Quadratic level losses: the central difference is exact up to float32 storage of w±εv.
    u.gradient.forEach((g, l) => expect(g).toBeCloseTo(exact[l], 5));
    expect(u.gradient[0]).toBeLessThan(0); // turning level 0 up lowers L_val after the step
    expect(u.gradient[1]).toBeGreaterThan(0);
    // The parameters are left where they were.
    expect(Array.from(p.w)).toEqual([0.125, -0.25, 0.5, 0]);
  });

  it('matches central differences of L_val(w − ξ∇L_train(w, c)) in c, which are exactly 0 first-order', async () => {
    const p = toy();
    const u = await unrolledWeightGradient(p, gates, { xi });
    const byDiff = await architectureGradientByDifferences(p, gates, { xi, delta: 1e-3 });
    byDiff.forEach((g, l) => expect(g).toBeCloseTo(u.gradient[l], 4));
    // First order (ξ = 0): L_val does not read the gates, so its gradient in c vanishes exactly.
    const firstOrder = await architectureGradientByDifferences(p, gates, { xi: 0, delta: 1e-3 });
    expect(firstOrder).toEqual([0, 0, 0]);
    expect(u.gradient.some((g) => Math.abs(g) > 1e-3)).toBe(true);
  });

  it('uses ε = 0.01/‖v‖ and four problem calls: two gradients and two loss evaluations', async () => {
    const p = toy();
    const u = await unrolledWeightGradient(p, gates, { xi });
    const g = p.trainGradient64(gates);
    const wp = Array.from(p.w, (x, i) => x - xi * g[i]);
    const vNorm = Math.hypot(...wp.map((x, i) => x - p.target[i]));
    expect(u.epsilon).toBeCloseTo(0.01 / vNorm, 10);
    expect(p.calls).toEqual({ trainGradient: 1, trainLevelLosses: 2, valGradient: 1, trainStep: 0 });
    expect(u.valLossUnrolled).toBeCloseTo(p.valLoss(wp), 6);
  });
});
