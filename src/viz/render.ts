/**
 * The one renderer every plot goes through: a vega-lite spec is compiled to vega, rendered headless to SVG
 * (vega's View.toSVG, no browser or canvas), and rasterized to PNG by sharp. The font family is set
 * explicitly to DejaVu Sans (Debian fonts-dejavu-core): sharp's SVG rasterizer resolves it through
 * fontconfig, so text renders on a bare machine instead of falling back to missing-glyph boxes.
 */
import * as path from 'node:path';
import sharp from 'sharp';
import type { Config, TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };
import { RlpkdError } from '../errors';
import { writeFileAtomic } from '../onnx/model-io';
import { loadVega } from './load-vega';

/** A vega-lite specification (what every plot module returns). */
export type PlotSpec = TopLevelSpec;

/** The font every plot uses (the SVG names it; the PNG rasterizer finds it through fontconfig). */
export const PLOT_FONT = 'DejaVu Sans';

/** Shared look: readable sizes, white background (PNGs are not transparent), the explicit font. */
export const PLOT_CONFIG: Config = {
  font: PLOT_FONT,
  background: 'white',
  padding: 8,
  title: { fontSize: 15, font: PLOT_FONT, anchor: 'start' },
  axis: { labelFontSize: 12, titleFontSize: 13, labelFont: PLOT_FONT, titleFont: PLOT_FONT },
  legend: {
    labelFontSize: 12,
    titleFontSize: 13,
    labelFont: PLOT_FONT,
    titleFont: PLOT_FONT,
    labelLimit: 260,
  },
  header: { labelFontSize: 13, titleFontSize: 13, labelFont: PLOT_FONT, titleFont: PLOT_FONT },
  text: { font: PLOT_FONT },
};

/** Rendering options. */
export interface RenderOptions {
  /** PNG pixels per SVG unit (default 2: sharp at 144 dpi, crisp on screens and in documents). */
  scale?: number;
}

/** A rendered plot. */
export interface RenderedPlot {
  svg: string;
  png: Buffer;
  /** PNG size in pixels (the SVG's size times the scale). */
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA). */
  channels: 3 | 4;
}

/** The spec with the shared config under its own (the plot's settings win). */
export function withPlotConfig(spec: PlotSpec): PlotSpec {
  const own = spec.config ?? {};
  const merged: Config = { ...PLOT_CONFIG, ...own };
  for (const key of ['title', 'axis', 'legend', 'header'] as const) {
    merged[key] = { ...(PLOT_CONFIG[key] as object), ...((own[key] as object | undefined) ?? {}) } as never;
  }
  return { ...spec, config: merged } as PlotSpec;
}

/** Renders a vega-lite spec to SVG and PNG. */
export async function renderPlot(spec: PlotSpec, options: RenderOptions = {}): Promise<RenderedPlot> {
  const scale = options.scale ?? 2;
  if (!(scale > 0 && scale <= 8)) throw new RlpkdError(`plot scale must be in (0, 8], got ${scale}`);
  const { vega, vegaLite } = await loadVega();
  let svg: string;
  try {
    const compiled = vegaLite.compile(withPlotConfig(spec)).spec;
    const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
    svg = await view.toSVG();
    view.finalize();
  } catch (err) {
    throw new RlpkdError(`could not render the plot: ${(err as Error).message}`, { cause: err });
  }
  // The SVG's own width/height are in CSS pixels (72 dpi for librsvg): density 72·scale gives scale× pixels.
  const { data, info } = await sharp(Buffer.from(svg), { density: 72 * scale })
    .png()
    .toBuffer({ resolveWithObject: true });
  return { svg, png: data, width: info.width, height: info.height, channels: info.channels === 3 ? 3 : 4 };
}

/** Files written for one plot. */
export interface WrittenPlot {
  name: string;
  svgFile: string;
  pngFile: string;
  width: number;
  height: number;
}

/** Renders a spec and writes `<dir>/<name>.svg` and `<dir>/<name>.png` (each atomically). */
export async function writePlot(
  dir: string,
  name: string,
  spec: PlotSpec,
  options: RenderOptions = {},
): Promise<WrittenPlot> {
  const r = await renderPlot(spec, options);
  const svgFile = path.join(dir, `${name}.svg`);
  const pngFile = path.join(dir, `${name}.png`);
  writeFileAtomic(svgFile, r.svg);
  writeFileAtomic(pngFile, [r.png]);
  return { name, svgFile, pngFile, width: r.width, height: r.height };
}
