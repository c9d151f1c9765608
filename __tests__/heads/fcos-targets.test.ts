import { assignFcosTargets, fcosLocations, fcosScaleRanges, type HeadLevel } from '../../src/heads';

const LEVELS: HeadLevel[] = [
  { name: 'p3', channels: 1, stride: 4, height: 4, width: 5 },
  { name: 'p4', channels: 1, stride: 8, height: 2, width: 3 },
];

describe('FCOS target assignment', () => {
  it('places locations at ⌊s/2⌋ + i·s, finest level first, row-major', () => {
    const p = Array.from(fcosLocations(LEVELS));
    expect(p.slice(0, 12)).toEqual([2, 2, 6, 2, 10, 2, 14, 2, 18, 2, 2, 6]);
    expect(p.slice(40)).toEqual([4, 4, 12, 4, 20, 4, 4, 12, 12, 12, 20, 12]);
  });

  it("scales FCOS's 64/128/256/512-of-800 boundaries to the image's longer side", () => {
    const r = fcosScaleRanges(4, 96, 64);
    const want = [
      [0, 7.68],
      [7.68, 15.36],
      [15.36, 30.72],
      [30.72, Infinity],
    ];
    r.forEach(([lo, hi], i) => {
      expect(lo).toBeCloseTo(want[i][0], 10);
      expect(hi).toBeCloseTo(want[i][1], 10);
    });
    expect(fcosScaleRanges(1, 96, 96)).toEqual([[0, Infinity]]);
    expect(() => fcosScaleRanges(6, 96, 96)).toThrow(/at most 5/);
  });

  it('assigns by scale range, strict containment and smallest area (hand-computed)', () => {
    const A_SMALL = { box: [1, 1, 9, 7] as const, label: 1 };
    const B_IMAGE = { box: [0, 0, 20, 16] as const, label: 0 };
    const C_MID = { box: [0, 0, 12, 8] as const, label: 0 };
    const t = assignFcosTargets([[A_SMALL, B_IMAGE, C_MID], []], {
      levels: LEVELS,
      numClasses: 2,
      imageHeight: 16,
      imageWidth: 20,
      scaleRanges: [
        [0, 6],
        [6, Infinity],
      ],
    });
    const A = 26;
    expect(t.locations).toBe(A);
    // P3: (6,2) has l,t,r,b = 5,1,3,5 and (6,6) 5,5,3,1 for the small box (max 5 < 6); (2,2) has max 7.
    // P4 (from index 20): (4,4) lies in B and C, both in range: C is smaller. (12,4) is on C's right edge,
    // so B. (20,4) and (20,12) lie on B's right edge: background. (4,12), (12,12): B.
    const assigned = Array.from(t.assigned.slice(0, A));
    const want = new Array(A).fill(-1);
    want[1] = 0;
    want[6] = 0;
    want[20] = 2;
    want[21] = 1;
    want[23] = 1;
    want[24] = 1;
    expect(assigned).toEqual(want);
    expect(Array.from(t.assigned.slice(A))).toEqual(new Array(A).fill(-1));
    expect(Array.from(t.positive.slice(0, A))).toEqual(want.map((w) => (w >= 0 ? 1 : 0)));
    expect(Array.from(t.box.slice(4, 8))).toEqual([5, 1, 3, 5]);
    expect(Array.from(t.box.slice(80, 84))).toEqual([4, 4, 8, 4]);
    expect(t.centerness[1]).toBeCloseTo(Math.sqrt((3 / 5) * (1 / 5)), 6);
    expect(t.centerness[20]).toBeCloseTo(Math.sqrt(0.5), 6);
    expect(Array.from(t.cls.slice(2, 4))).toEqual([0, 1]); // location 1: class 1
    expect(Array.from(t.cls.slice(40, 42))).toEqual([1, 0]); // location 20: class 0
    expect(t.cls.reduce((s, v) => s + v, 0)).toBe(6);
    expect(t.centerness[A + 20]).toBe(0);
  });

  it('refuses labels outside 0..K−1 and a range count that does not match the levels', () => {
    const opts = { levels: LEVELS, numClasses: 2, imageHeight: 16, imageWidth: 20 };
    expect(() => assignFcosTargets([[{ box: [0, 0, 4, 4], label: 2 }]], opts)).toThrow(
      /label 2, classes are 0..1/,
    );
    expect(() => assignFcosTargets([[]], { ...opts, scaleRanges: [[0, Infinity]] })).toThrow(
      /1 scale ranges for 2 levels/,
    );
  });
});
