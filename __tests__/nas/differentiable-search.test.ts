import { dartsGates } from '../../src/nas/darts';
import { deriveSelection, runGatedSearch } from '../../src/nas/differentiable-search';
import { gdasGates } from '../../src/nas/gdas';
import { searchSpace } from '../../src/nas/search-space';
import { threeLevelToy, type ToyProblem } from './toy-problem';

// Level 0 pulls the student toward the validation target, level 1 away from it, level 2 sideways.
function toy(): ToyProblem {
  return threeLevelToy([1, 1, 0, 0], [0, 0, 0, 0], 0.05);
}

const space = searchSpace(['P3', 'P4', 'P5'], (levels) => 0.1 * levels.length);

describe('differentiable level-selection searches on a float64 toy', () => {
  it('derives the selection from α: α > 0, else the largest alone', () => {
    expect(deriveSelection([0.2, -0.1, 0.3])).toBe(0b101);
    expect(deriveSelection([-0.2, -0.1, -0.3])).toBe(0b010);
  });

  it('DARTS-LS keeps the helpful level and drops the harmful one; with ξ = 0 only the cost speaks', async () => {
    const p = toy();
    const base = p.valLoss();
    const options = { steps: 30, xi: 0.5, lambda: 0.01, baseLoss: base, archLr: 0.1, seed: 's' };
    const r = await runGatedSearch(p, space, dartsGates(space), options);
    expect(r.alpha[0]).toBeGreaterThan(0);
    expect(r.alpha[1]).toBeLessThan(0);
    expect(r.selection & 1).toBe(1);
    expect(r.selection & 2).toBe(0);
    expect(r.curve).toHaveLength(30);
    expect(p.calls.trainStep).toBe(30);
    // The curve's objective is L_val(w')/L_val(w₀) + λ·E[cost]: at step 0, w = w₀ and the gates are ½.
    expect(r.curve[0].gates.every((g) => Math.abs(g - 0.5) < 1e-3)).toBe(true);
    // First order (ξ = 0): every α only feels λ·cost and falls alike: the collapse the unrolled step avoids.
    await p.reset();
    const first = await runGatedSearch(p, space, dartsGates(space), { ...options, xi: 0 });
    expect(first.alpha.every((a) => a < 0)).toBe(true);
    const spread = Math.max(...first.alpha) - Math.min(...first.alpha);
    expect(spread).toBeLessThan(0.01);
  });

  it('GDAS-LS with hard Gumbel gates and the annealed temperature finds the same level', async () => {
    const p = toy();
    const r = await runGatedSearch(p, space, gdasGates(space), {
      steps: 40,
      xi: 0.5,
      lambda: 0.01,
      baseLoss: p.valLoss(),
      archLr: 0.1,
      seed: 'g',
    });
    expect(r.curve[0].temperature).toBe(10);
    expect(r.curve[39].temperature).toBeCloseTo(0.1, 12);
    r.curve.forEach((pt) => pt.gates.forEach((g) => expect(g === 0 || g === 1).toBe(true)));
    expect(r.alpha[0]).toBeGreaterThan(r.alpha[1]);
    expect(r.selection & 1).toBe(1);
  });

  it('is deterministic for a seed', async () => {
    const run = async () => {
      const p = toy();
      return runGatedSearch(p, space, gdasGates(space), {
        steps: 10,
        xi: 0.5,
        lambda: 0.01,
        baseLoss: p.valLoss(),
        archLr: 0.1,
        seed: 'same',
      });
    };
    expect(await run()).toEqual(await run());
  });
});
