/// <reference lib="dom" />
/**
 * The demo page (index.html beside it; `rlpkd demo` serves both with the bundle under bundle/): pick
 * or drop images, and see per image the task head's output drawn on the image (boxes with class and
 * score, a label-map overlay, or the top classes; without a head, the finest computed level's features),
 * the levels the policy chose, their feature heatmaps, the compute saved against the full pyramid and
 * the time of each part. `?ep=webgpu` asks for WebGPU, `?threads=N` N wasm threads, `?levels=P3,P5` computes
 * those levels instead of asking the policy. Every run is also kept in `window.rlpkdDemo` (inputs and outputs)
 * for the browser test to compare with the Node runtime.
 */
import { AdaptiveModel, type AdaptiveResult, type FloatTensor } from '../adaptive-model';
import { timeGraphRuns } from '../graph-timing';
import { imageToInput, type RgbaImage } from '../preprocess';
import type { HeadResult, TaskOutput } from '../task-head';

/** One image's run as the page keeps it. */
interface DemoRun {
  name: string;
  budget: number;
  input: number[];
  levels: string[];
  decisions: AdaptiveResult['decisions'];
  features: Record<string, { dims: number[]; data: number[] }>;
  times: AdaptiveResult['times'];
  macs: AdaptiveResult['macs'];
  /** The head's result with arrays for typed arrays (null without a head). */
  task: {
    output: Record<string, unknown> | null;
    skipped: string | null;
    raw: Record<string, { dims: number[]; data: number[] }>;
    levels: string[];
    macs: HeadResult['macs'];
  } | null;
}

/** Medians (ms) of `timeSelection`. */
interface SelectionTimes {
  parts: number;
  head: number;
  trunk: number;
  policy: number;
  decision: number;
}

/** What the page exposes to scripts (and the browser test). */
interface DemoState {
  ready: boolean;
  error: string | null;
  executionProvider: string | null;
  runs: DemoRun[];
  /** Runs the given images (as files) and resolves when they are shown. */
  runFiles?: (files: File[]) => Promise<void>;
  /**
   * Median milliseconds over `repeats` runs of the last image with the levels fixed: the level parts
   * together, the head's parts and merge together, the trunk, and the policy's decision on the same
   * image: its graph runs (`policy`) and those with the state pooling (`decision`), for the timing table.
   */
  timeSelection?: (levels: string[], repeats: number) => Promise<SelectionTimes>;
  /**
   * Median milliseconds of a bare session run of the given graph (ONNX bytes, one float input of `dims`)
   * with the bundle's execution provider: the fixed time of every session run, for the timing table.
   */
  timeGraph?: (model: number[], dims: number[], repeats: number) => Promise<number>;
}

declare global {
  interface Window {
    rlpkdDemo: DemoState;
  }
}

const state: DemoState = { ready: false, error: null, executionProvider: null, runs: [] };
window.rlpkdDemo = state;

const el = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;
let model: AdaptiveModel | null = null;
/** `?levels=`: a fixed selection instead of the policy's. */
let fixedLevels: string[] | undefined;

function showError(err: unknown): void {
  const e = err as { message?: string; hint?: string };
  const text = `${e.message ?? String(err)}${e.hint ? ` — ${e.hint}` : ''}`;
  state.error = text;
  const box = el('error');
  box.textContent = `error: ${text}`;
  box.hidden = false;
  el('status').textContent = 'the bundle could not be used';
}

/** t in [0, 1] → a dark-blue → teal → yellow colour. */
function heat(t: number): [number, number, number] {
  const stops: [number, number, number][] = [
    [13, 8, 135],
    [33, 145, 140],
    [253, 231, 37],
  ];
  const x = Math.min(Math.max(t, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  return [0, 1, 2].map((c) => Math.round(stops[i][c] * (1 - f) + stops[i + 1][c] * f)) as [
    number,
    number,
    number,
  ];
}

/** Mean |x| over channels of a [1, C, H, W] map, scaled to [0, 1], as RGBA pixels. */
function heatmap(t: FloatTensor, alpha = 255): ImageData {
  const [, C, H, W] = t.dims;
  const m = new Float32Array(H * W);
  for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) m[i] += Math.abs(t.data[c * H * W + i]) / C;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of m) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  const img = new ImageData(W, H);
  m.forEach((v, i) => {
    const [r, g, b] = heat(hi > lo ? (v - lo) / (hi - lo) : 0);
    img.data.set([r, g, b, alpha], 4 * i);
  });
  return img;
}

/** Draws pixels scaled (nearest) onto a canvas of its own display size. */
function drawScaled(canvas: HTMLCanvasElement, pixels: ImageData | RgbaImage, over?: ImageData): void {
  const ctx = canvas.getContext('2d')!;
  ctx.imageSmoothingEnabled = false;
  const put = (p: ImageData): void => {
    const tmp = document.createElement('canvas');
    [tmp.width, tmp.height] = [p.width, p.height];
    tmp.getContext('2d')!.putImageData(p, 0, 0);
    ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  };
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  put(
    pixels instanceof ImageData ? pixels : new ImageData(Uint8ClampedArray.from(pixels.data), pixels.width),
  );
  if (over) {
    ctx.globalAlpha = 0.45;
    put(over);
    ctx.globalAlpha = 1;
  }
}

const ms = (x: number): string => x.toFixed(2);

/** A distinct colour per class (hue steps of the golden angle). */
function classColour(k: number, alpha = 1): string {
  return `hsla(${Math.round((k * 137.508) % 360)}, 85%, 50%, ${alpha})`;
}

function className(k: number): string {
  return model!.meta.classNames?.[k] ?? `class ${k}`;
}

/** Detections drawn on the image and listed: the best ones (the rest are counted), so the page stays readable. */
const SHOWN_DETECTIONS = 10;
/** Least score of a box drawn on the image (the table lists the best ones whatever their score). */
const DRAWN_SCORE = 0.3;

/** The best boxes with class and score, drawn over the image canvas (image pixels scaled to the canvas). */
function drawDetections(canvas: HTMLCanvasElement, out: Extract<TaskOutput, { task: 'detection' }>): void {
  const { width: W, height: H } = model!.meta.input;
  const ctx = canvas.getContext('2d')!;
  const [sx, sy] = [canvas.width / W, canvas.height / H];
  ctx.font = 'bold 13px "DejaVu Sans", sans-serif';
  ctx.textBaseline = 'top';
  const shown = out.detections.slice(0, SHOWN_DETECTIONS).filter((d) => d.score >= DRAWN_SCORE);
  const boxes = shown.map((d) => [d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy]);
  ctx.lineWidth = 2;
  // Boxes worst first, so the best end on top; inset by a pixel so a box on the image border shows.
  for (let i = boxes.length - 1; i >= 0; i--) {
    const [x1, y1, x2, y2] = boxes[i];
    ctx.strokeStyle = classColour(shown[i].label);
    ctx.strokeRect(x1 + 1, y1 + 1, Math.max(x2 - x1 - 2, 1), Math.max(y2 - y1 - 2, 1));
  }
  // Labels best first, each moved down past the labels already placed, so none hides another.
  const placed: [number, number, number, number][] = [];
  const LH = 17;
  shown.forEach((d, i) => {
    const [x1, y1] = boxes[i];
    const text = `${className(d.label)} ${d.score.toFixed(2)}`;
    const w = ctx.measureText(text).width + 6;
    const x = Math.min(x1, canvas.width - w);
    let y = y1 >= LH ? y1 - LH : y1;
    while (placed.some(([px, py, pw]) => x < px + pw && px < x + w && y < py + LH && py < y + LH)) y += LH;
    placed.push([x, y, w, LH]);
    ctx.fillStyle = classColour(d.label, 0.9);
    ctx.fillRect(x, y, w, LH);
    ctx.fillStyle = '#fff';
    ctx.fillText(text, x + 3, y + 2);
  });
}

/** The label map as class-coloured RGBA (alpha 0.5), for drawing over the image. */
function labelOverlay(out: Extract<TaskOutput, { task: 'segmentation' }>): ImageData {
  const img = new ImageData(out.width, out.height);
  const probe = document.createElement('canvas').getContext('2d')!;
  const rgb = new Map<number, number[]>();
  out.labels.forEach((k, i) => {
    if (!rgb.has(k)) {
      probe.fillStyle = classColour(k);
      probe.fillRect(0, 0, 1, 1);
      rgb.set(k, Array.from(probe.getImageData(0, 0, 1, 1).data.slice(0, 3)));
    }
    img.data.set([...rgb.get(k)!, 255], 4 * i);
  });
  return img;
}

/** The task section: what the head found, in words. */
function taskSummary(task: HeadResult | null): string {
  if (!task) return 'no task head in this bundle (export a run with one, or pass --head): features only';
  if (!task.output) return `task head not run: ${task.skipped ?? ''}`;
  const on = `on ${task.levels.join(', ')}`;
  const o = task.output;
  if (o.task === 'detection') {
    const more = o.detections.length - SHOWN_DETECTIONS;
    const rows = o.detections
      .slice(0, SHOWN_DETECTIONS)
      .map(
        (d) =>
          `<tr><td><span class="swatch" style="background:${classColour(d.label)}"></span>${className(d.label)}</td>` +
          `<td>${d.score.toFixed(3)}</td><td>${d.box.map((v) => v.toFixed(1)).join(', ')}</td></tr>`,
      );
    return (
      `<p>${o.detections.length} detection(s), head ${on}</p>` +
      `<table id="detections"><thead><tr><th>class</th><th>score</th><th>box x1, y1, x2, y2</th></tr></thead>` +
      `<tbody>${rows.join('')}</tbody></table>` +
      (more > 0
        ? `<p>… and ${more} more below score ${o.detections[SHOWN_DETECTIONS - 1].score.toFixed(3)}</p>`
        : '')
    );
  }
  if (o.task === 'segmentation') {
    const counts = new Map<number, number>();
    for (const k of o.labels) counts.set(k, (counts.get(k) ?? 0) + 1);
    const items = [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(
        ([k, n]) =>
          `<li><span class="swatch" style="background:${classColour(k)}"></span>${className(k)}: ${((100 * n) / o.labels.length).toFixed(1)}%</li>`,
      );
    return `<p>label map, head ${on}</p><ul id="classes">${items.join('')}</ul>`;
  }
  const items = o.classes.map((c) => `<li>${className(c.label)}: ${(100 * c.score).toFixed(1)}%</li>`);
  return `<p>top classes, head ${on}</p><ol id="classes">${items.join('')}</ol>`;
}

function render(name: string, pixels: RgbaImage, r: AdaptiveResult): void {
  const meta = model!.meta;
  el('result').hidden = false;
  const finest = meta.levels.find((l) => r.features[l.name]);
  const out = r.task?.output ?? null;
  const canvas = el<HTMLCanvasElement>('image');
  if (out?.task === 'segmentation') drawScaled(canvas, pixels, labelOverlay(out));
  else if (out) drawScaled(canvas, pixels);
  else drawScaled(canvas, pixels, finest ? heatmap(r.features[finest.name]) : undefined);
  if (out?.task === 'detection') drawDetections(canvas, out);
  const drawn = {
    detection: `detections scoring ≥ ${DRAWN_SCORE}`,
    segmentation: 'label map',
    classification: 'classes below',
  };
  const overlay = out ? ` (${drawn[out.task]})` : finest ? ` (overlay: ${finest.name} features)` : '';
  el('image-caption').textContent = `${name} — chosen levels: ${r.levels.join(', ')}${overlay}`;
  el('task').innerHTML = taskSummary(r.task);
  const rows = r.decisions.map((d) => {
    const level = meta.levels.find((l) => l.name === d.level)!;
    const took = r.times.levels[d.level];
    const what = d.selected ? 'computed' : 'skipped';
    const why = d.kind === 'free' ? '' : ` (${d.kind})`;
    return (
      `<tr class="${d.selected ? 'on' : 'off'}" data-level="${d.level}"><td>${d.level}</td><td>${what}${why}</td>` +
      `<td>${Number.isFinite(d.logit) ? d.logit.toFixed(4) : '–'}</td><td>${(100 * level.saving).toFixed(1)}%</td>` +
      `<td>${took === undefined ? '–' : ms(took)}</td></tr>`
    );
  });
  el('levels').querySelector('tbody')!.innerHTML = rows.join('');
  el('saved').textContent =
    `${r.levels.length} of ${meta.levels.length} levels: ${r.macs.used.toLocaleString('en-US')} of ` +
    `${r.macs.total.toLocaleString('en-US')} MACs, ${(100 * r.macs.saved).toFixed(1)}% saved vs the full pyramid` +
    (r.task
      ? `; head ${r.task.macs.used.toLocaleString('en-US')} of ${r.task.macs.total.toLocaleString('en-US')} MACs`
      : '');
  const t = r.times;
  const timeRows: [string, number][] = [
    ['trunk', t.trunk],
    ['state', t.state],
    ['policy', t.policy],
    ...r.levels.map((l): [string, number] => [`level ${l}`, t.levels[l]]),
    ...Object.entries(t.head.parts).map(([l, v]): [string, number] => [`head on ${l}`, v]),
    ...(meta.head?.merge && r.task?.output ? ([['head merge', t.head.merge]] as [string, number][]) : []),
    ...(r.task?.output ? ([['decoding', t.head.decode]] as [string, number][]) : []),
    ['total', t.total],
  ];
  el('times').querySelector('tbody')!.innerHTML = timeRows
    .map(([k, v]) => `<tr><td>${k}</td><td>${ms(v)} ms</td></tr>`)
    .join('');
  const maps = el('heatmaps');
  maps.innerHTML = '';
  for (const l of meta.levels) {
    const fig = document.createElement('figure');
    const f = r.features[l.name];
    if (f) {
      const c = document.createElement('canvas');
      [c.width, c.height] = [128, 128];
      drawScaled(c, heatmap(f));
      fig.appendChild(c);
    } else {
      const d = document.createElement('div');
      d.className = 'skipped';
      d.textContent = 'skipped';
      fig.appendChild(d);
    }
    const cap = document.createElement('figcaption');
    cap.textContent = `${l.name} (stride ${l.stride})`;
    fig.appendChild(cap);
    maps.appendChild(fig);
  }
}

/** Images kept in the strip under the result, newest first. */
const HISTORY = 6;

/** A thumbnail of the image as drawn (with its task output), its levels and what they saved. */
function addToHistory(name: string, r: AdaptiveResult): void {
  const list = el('history-list');
  const fig = document.createElement('figure');
  const thumb = document.createElement('canvas');
  [thumb.width, thumb.height] = [160, 160];
  thumb.getContext('2d')!.drawImage(el<HTMLCanvasElement>('image'), 0, 0, thumb.width, thumb.height);
  const cap = document.createElement('figcaption');
  const out = r.task?.output;
  const found = out?.task === 'detection' ? `, ${out.detections.length} detection(s)` : '';
  cap.textContent = `${name}: ${r.levels.join(', ')}${found}; ${(100 * r.macs.saved).toFixed(1)}% saved`;
  fig.append(thumb, cap);
  list.prepend(fig);
  while (list.children.length > HISTORY) list.lastElementChild!.remove();
  el('history').hidden = false;
}

async function runFiles(files: File[]): Promise<void> {
  if (!model) return;
  const budget = Number(el<HTMLInputElement>('budget').value);
  for (const file of files) {
    try {
      const bitmap = await createImageBitmap(file);
      const { tensor, pixels } = imageToInput(bitmap, model.meta.input);
      const r = await model.run(tensor, fixedLevels ? { levels: fixedLevels } : { budget });
      render(file.name, pixels, r);
      addToHistory(file.name, r);
      state.runs.push({
        name: file.name,
        budget,
        input: Array.from(tensor),
        levels: r.levels,
        decisions: r.decisions,
        features: Object.fromEntries(
          Object.entries(r.features).map(([k, v]) => [k, { dims: v.dims, data: Array.from(v.data) }]),
        ),
        times: r.times,
        macs: r.macs,
        task: r.task && plainTask(r.task),
      });
    } catch (err) {
      showError(err);
    }
  }
}

/** The head's result with typed arrays as plain arrays (what page.evaluate can carry out). */
function plainTask(task: HeadResult): NonNullable<DemoRun['task']> {
  const o = task.output;
  return {
    output: o && (o.task === 'segmentation' ? { ...o, labels: Array.from(o.labels) } : { ...o }),
    skipped: task.skipped ?? null,
    raw: Object.fromEntries(
      Object.entries(task.raw).map(([k, v]) => [k, { dims: v.dims, data: Array.from(v.data) }]),
    ),
    levels: task.levels,
    macs: task.macs,
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeSelection(levels: string[], repeats: number): Promise<SelectionTimes> {
  const last = state.runs[state.runs.length - 1];
  if (!model || !last) throw new Error('run an image first');
  const input = Float32Array.from(last.input);
  const parts: number[] = [];
  const head: number[] = [];
  const trunk: number[] = [];
  const policy: number[] = [];
  const decision: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const fixed = await model.run(input, { levels });
    parts.push(Object.values(fixed.times.levels).reduce((a, b) => a + b, 0));
    head.push(Object.values(fixed.times.head.parts).reduce((a, b) => a + b, fixed.times.head.merge));
    trunk.push(fixed.times.trunk);
    const decided = (await model.run(input)).times;
    policy.push(decided.policy);
    decision.push(decided.state + decided.policy);
  }
  return {
    parts: median(parts),
    head: median(head),
    trunk: median(trunk),
    policy: median(policy),
    decision: median(decision),
  };
}

async function timeGraph(bytes: number[], dims: number[], repeats: number): Promise<number> {
  if (!model) throw new Error('the bundle is not loaded');
  const times = await timeGraphRuns(Uint8Array.from(bytes), dims, {
    executionProvider: model.executionProvider,
    repeats,
    warmup: Math.min(repeats, 5),
  });
  return median(times);
}

async function start(): Promise<void> {
  const query = new URLSearchParams(location.search);
  const ep = query.get('ep') === 'webgpu' ? 'webgpu' : 'wasm';
  const threads = query.get('threads');
  fixedLevels = query
    .get('levels')
    ?.split(',')
    .filter((l) => l !== '');
  const budget = el<HTMLInputElement>('budget');
  budget.addEventListener('input', () => (el('budget-value').textContent = Number(budget.value).toFixed(2)));
  const input = el<HTMLInputElement>('file');
  input.addEventListener('change', () => void runFiles(Array.from(input.files ?? [])));
  const drop = el('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void runFiles(Array.from(e.dataTransfer?.files ?? []));
  });
  state.runFiles = runFiles;
  state.timeSelection = timeSelection;
  state.timeGraph = timeGraph;
  try {
    model = await AdaptiveModel.load(new URL('bundle/', location.href).href, {
      executionProvider: ep,
      ...(threads ? { numThreads: Number(threads) } : {}),
    });
    const m = model.meta;
    state.executionProvider = ep;
    // Start at the middle of the budgets the policy was trained on (its state includes the budget left).
    const { min, max } = m.policy.trainingBudget;
    budget.value = String((min + max) / 2);
    budget.dispatchEvent(new Event('input'));
    el('status').textContent =
      `bundle from ${m.source.checkpoint}: ${m.levels.length} levels (${m.levels.map((l) => l.name).join(', ')}), ` +
      `${m.policy.mode} policy on a ${m.state.dim}-value state, input ${m.input.width}×${m.input.height}, ` +
      `trained on budgets ${min === max ? min : `${min}–${max}`}` +
      (m.head ? `; ${m.head.task} head (${m.head.numClasses} classes, ${m.head.source})` : '; no task head');
    el('runtime').textContent =
      `onnxruntime-web ${m.versions.onnxruntimeWeb} on ${ep}, ${model.numThreads} thread(s)` +
      ` (cross-origin isolated: ${self.crossOriginIsolated ? 'yes' : 'no'})`;
    if (fixedLevels)
      el('status').textContent += `; levels fixed to ${fixedLevels.join(', ')} (not the policy's)`;
    state.ready = true;
  } catch (err) {
    showError(err);
  }
}

void start();
