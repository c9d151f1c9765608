import {
  allSelections,
  expectedCost,
  levelsMask,
  maskGates,
  maskLevels,
  searchSpace,
  selectionLabel,
} from '../../src/nas/search-space';

const names = ['P2', 'P3', 'P4'];

describe('NAS search space', () => {
  it('enumerates the 2^L − 1 non-empty selections and converts masks both ways', () => {
    expect(allSelections(3)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(maskLevels(names, 5)).toEqual(['P2', 'P4']);
    expect(levelsMask(names, ['P4', 'P2'])).toBe(5);
    expect(selectionLabel(names, 6)).toBe('P3+P4');
    expect(maskGates(3, 6)).toEqual([0, 1, 1]);
    expect(() => levelsMask(names, ['P6'])).toThrow(/'P6' is not one of the levels/);
  });

  it('expected cost of additive costs is Σ p_l·c_l with gradient c_l (hand-computed)', () => {
    const c = [0.7, 0.2, 0.1];
    const space = searchSpace(names, (levels) => levels.reduce((a, n) => a + c[names.indexOf(n)], 0));
    const r = expectedCost(space, [0.5, 0.25, 1]);
    expect(r.value).toBeCloseTo(0.35 + 0.05 + 0.1, 12);
    r.grad.forEach((g, l) => expect(g).toBeCloseTo(c[l], 12));
  });

  it('expected cost of a non-additive cost: value by hand, gradient by central differences', () => {
    // A shared trunk: any selection costs 0.5, plus 0.3 / 0.2 / 0 per level.
    const extra = [0.3, 0.2, 0];
    const space = searchSpace(
      names,
      (levels) => 0.5 + levels.reduce((a, n) => a + extra[names.indexOf(n)], 0),
    );
    const p = [0.5, 0.5, 0.5];
    // P(non-empty) = 7/8; E[Σ extra] = 0.25.
    expect(expectedCost(space, p).value).toBeCloseTo(0.5 * (7 / 8) + 0.25, 12);
    const q = [0.3, 0.6, 0.8];
    const r = expectedCost(space, q);
    const h = 1e-6;
    q.forEach((_, l) => {
      const up = q.map((x, k) => (k === l ? x + h : x));
      const down = q.map((x, k) => (k === l ? x - h : x));
      const fd = (expectedCost(space, up).value - expectedCost(space, down).value) / (2 * h);
      expect(r.grad[l]).toBeCloseTo(fd, 8);
    });
  });

  it('refuses an empty level list', () => {
    expect(() => searchSpace([], () => 0)).toThrow(/0 levels/);
  });
});
