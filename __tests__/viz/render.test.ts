/**
 * Rendering: every plot spec compiles and renders to an SVG that names the DejaVu Sans font and carries the
 * expected titles and legend entries, and to a PNG of the SVG's size times the scale.
 */
import sharp from 'sharp';
import { gradnormWeightsSpec, weightsFromHistory } from '../../src/viz/gradnorm-weights';
import { paretoSpec } from '../../src/viz/pareto';
import { policyHeatmapData, policyHeatmapSpec } from '../../src/viz/policy-heatmap';
import { PLOT_FONT, renderPlot, type PlotSpec } from '../../src/viz/render';
import { curvesSpec, lossCurvePoints } from '../../src/viz/training-curves';

/** The SVG's width and height attributes. */
function svgSize(svg: string): [number, number] {
  const m = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  if (!m) throw new Error('no svg size');
  return [Number(m[1]), Number(m[2])];
}

/** Text content of the SVG's <text> elements. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
}

async function expectPng(spec: PlotSpec, scale: number): Promise<string> {
  const r = await renderPlot(spec, { scale });
  const [w, h] = svgSize(r.svg);
  const meta = await sharp(r.png).metadata();
  expect(meta.format).toBe('png');
  expect([meta.width, meta.height]).toEqual([Math.round(w * scale), Math.round(h * scale)]);
  expect([r.width, r.height]).toEqual([meta.width, meta.height]);
  // Text is drawn in the explicit font, and the PNG is not blank (white background, dark text and marks).
  expect(r.svg).toContain(`font-family="${PLOT_FONT}"`);
  const stats = await sharp(r.png).stats();
  expect(stats.channels[0].min).toBeLessThan(80);
  expect(stats.channels[0].max).toBe(255);
  return r.svg;
}

describe('renderPlot', () => {
  it('policy heatmap: axis titles, levels, legend entries', async () => {
    const data = policyHeatmapData(
      { levelNames: ['P2', 'P3'], selections: [['P2'], ['P2', 'P3'], []] },
      'levels',
    );
    const svg = await expectPng(policyHeatmapSpec(data), 1);
    const t = texts(svg);
    expect(t).toEqual(
      expect.arrayContaining([
        'pyramid level',
        'held-out images, sorted by number of levels chosen',
        'P2',
        'P3',
        'distilled',
        'skipped',
        'levels', // the key strip's axis
      ]),
    );
  });

  it('GradNorm weights: a legend entry per level, the uniform reference, at scale 2', async () => {
    const curves = weightsFromHistory(
      ['P3', 'P4', 'P5'],
      [
        { step: 0, weights: [1 / 3, 1 / 3, 1 / 3] },
        { step: 1, weights: [0.4, 0.3, 0.3] },
      ],
    );
    const t = texts(await expectPng(gradnormWeightsSpec(curves), 2));
    expect(t).toEqual(
      expect.arrayContaining([
        'GradNorm update',
        'weight (levels sum to 1)',
        'P3',
        'P4',
        'P5',
        'uniform 1/3',
      ]),
    );
  });

  it('curves: a panel title per quantity and a legend only where a panel has several series', async () => {
    const pts = lossCurvePoints([
      { step: 0, phase: 1, 'distill/loss': 3, 'distill/level_loss/P2': 2, 'distill/level_loss/P3': 1 },
      { step: 4, phase: 1, 'distill/loss': 2, 'distill/level_loss/P2': 1.5, 'distill/level_loss/P3': 0.5 },
    ]);
    const t = texts(await expectPng(curvesSpec(pts, { title: 'Distillation loss' }), 1));
    expect(t).toEqual(
      expect.arrayContaining([
        'Distillation loss',
        'training distillation loss (per step)',
        'training loss per level (per step)',
        'P2',
        'P3',
      ]),
    );
    expect(t).not.toContain('phase 1'); // one series: no legend
  });

  it('Pareto: methods in the legend, frontier subsets labelled, the frontier explained', async () => {
    const svg = await expectPng(
      paretoSpec(
        [
          { method: 'P5', cost: 0.1, metric: 20, fixed: true },
          { method: 'P4+P5', cost: 0.3, metric: 25, fixed: true },
          { method: 'RL policy', cost: 0.2, metric: 26, std: 1 },
        ],
        { metricName: 'AP', costName: 'cost share' },
      ),
      1,
    );
    const t = texts(svg);
    expect(t).toEqual(
      expect.arrayContaining([
        'cost share',
        'AP (higher is better)',
        'RL policy',
        'P5',
        'P4+P5',
        'grey dots: fixed level subsets; dashed line: their Pareto frontier (linear in cost)',
      ]),
    );
  });

  it('rejects a scale outside (0, 8]', async () => {
    await expect(
      renderPlot(policyHeatmapSpec(policyHeatmapData({ levelNames: ['P2'], selections: [[]] })), {
        scale: 0,
      }),
    ).rejects.toThrow(/scale must be in/);
  });
});
