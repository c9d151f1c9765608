/**
 * The checkpoint evaluation as tables: one list of titled tables (or one-line notes), rendered as the
 * plain text `rlpkd eval` prints and as the Markdown of eval.md, so the two always say the same.
 */
import { BACKBONE_LABELS, BACKBONE_NAMES, type BackboneName } from './backbones';
import type { CheckpointEvaluation } from './checkpoint-evaluation';
import type { ScoreOrSkip } from './teacher-head-scores';

/** A titled table, or a note when `rows` is empty. */
export interface ReportTable {
  title: string;
  header: string[];
  rows: string[][];
  /** Lines under the table. */
  notes: string[];
}

/** How many of a score's values a table shows (COCO has 12; the first six are the AP columns). */
const SHOWN_VALUES = 6;

const num = (x: number | null | undefined): string =>
  x === null || x === undefined
    ? '-'
    : x !== 0 && (Math.abs(x) >= 1e4 || Math.abs(x) < 1e-3)
      ? x.toExponential(3)
      : x.toPrecision(4);
const fixed = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : x.toFixed(4));
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function scoreTable(title: string, scores: Partial<Record<BackboneName, ScoreOrSkip>>): ReportTable {
  const first = Object.values(scores).find(
    (s): s is Exclude<ScoreOrSkip, { skipped: string }> => 'value' in s!,
  );
  const keys = first ? Object.keys(first.values).slice(0, SHOWN_VALUES) : [];
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const name of BACKBONE_NAMES) {
    const s = scores[name];
    if (!s) continue;
    if ('skipped' in s) {
      notes.push(`${BACKBONE_LABELS[name]}: skipped: ${s.skipped}`);
      continue;
    }
    rows.push([BACKBONE_LABELS[name], ...keys.map((k) => fixed(s.values[k]))]);
  }
  const images = first ? ` on ${first.images} held-out images` : '';
  return { title: `${title}${images}`, header: ['backbone', ...keys], rows, notes };
}

const skippedTable = (title: string, why: string): ReportTable => ({
  title,
  header: [],
  rows: [],
  notes: [`skipped: ${why}`],
});

/** The evaluation's tables, in print order; `levelNames` is the level order (finest first). */
export function evaluationTables(e: CheckpointEvaluation, levelNames: readonly string[]): ReportTable[] {
  const tables: ReportTable[] = [];
  const f = e.fidelity;
  tables.push({
    title: `fidelity to the teacher per level on ${f.images} held-out images (MSE / cosine similarity)`,
    header: ['backbone', ...f.levels],
    rows: (['studentBefore', 'studentAfter', 'labelsOnly'] as const)
      .filter((n) => f.backbones[n])
      .map((n) => [
        BACKBONE_LABELS[n],
        ...f.levels.map((_, l) => `${num(f.backbones[n]!.mse[l])} / ${fixed(f.backbones[n]!.cosine[l])}`),
      ]),
    notes: Object.entries(f.notes).map(([level, why]) => `${level}: not compared: ${why}`),
  });
  const th = e.teacherHead;
  const thTitle = "task metric through the teacher's head (no training)";
  tables.push('skipped' in th ? skippedTable(thTitle, th.skipped) : scoreTable(thTitle, th.scores));
  const pr = e.probe;
  const prTitle = 'probe: a head trained on each frozen backbone';
  tables.push(
    'skipped' in pr
      ? skippedTable(prTitle, pr.skipped)
      : scoreTable(
          `${prTitle} (${pr.task}, ${pr.steps} steps, AdamW lr ${pr.lr}, batch ${pr.batchSize}, seed ${pr.seed})`,
          pr.scores,
        ),
  );
  const oh = e.ownHead;
  const ohTitle = "the student's own head (trained with the task loss)";
  tables.push('skipped' in oh ? skippedTable(ohTitle, oh.skipped) : scoreTable(ohTitle, oh));
  const po = e.policy;
  const poTitle = 'level selection by object size (share of the bin’s images selecting each level)';
  if ('skipped' in po) tables.push(skippedTable(poTitle, po.skipped));
  else {
    const c = po.correlation;
    tables.push({
      title: poTitle,
      header: ['bin', 'images', ...levelNames],
      rows: po.byBin.map((b) => [b.bin, String(b.images), ...levelNames.map((l) => pct(b.levels[l] ?? 0))]),
      notes: [
        `Spearman correlation of ${c.x} with the ${c.y}: ` +
          (c.value === null ? `undefined (${c.reason})` : `${c.value.toFixed(3)} over ${c.images} images`),
      ],
    });
    if (po.byBin.every((b) => b.affordable)) {
      tables.push({
        title:
          'held-out budgets by object size (share of the bin’s images whose budget covers each level’s cost)',
        header: ['bin', 'images', ...levelNames],
        rows: po.byBin.map((b) => [
          b.bin,
          String(b.images),
          ...levelNames.map((l) => pct(b.affordable![l] ?? 0)),
        ]),
        notes: ['A level is selected only where the budget covers it (unless min_levels forces it on).'],
      });
    }
  }
  const k = e.cost;
  const g = (macs: number) => `${(macs / 1e9).toPrecision(4)} GMAC`;
  tables.push({
    title: 'inference cost per image (cost model; FLOPs = 2 × MACs)',
    header: ['model', 'MACs', 'of the student'],
    rows: [
      ['teacher', g(k.teacherMacs), pct(k.teacherMacs / k.studentMacs)],
      ['student, every level', g(k.studentMacs), pct(1)],
      ['student, levels the policy selects (mean)', g(k.selectedMacs), pct(k.selectedShare)],
    ],
    notes: [],
  });
  return tables;
}

/** The tables as aligned plain text. */
export function tablesAsText(tables: readonly ReportTable[]): string {
  const lines: string[] = [];
  for (const t of tables) {
    lines.push(`${t.title}:`);
    if (t.rows.length > 0) {
      const widths = t.header.map((h, i) => Math.max(h.length, ...t.rows.map((r) => r[i]!.length)));
      const line = (cells: string[]) =>
        `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')}`;
      lines.push(line(t.header), ...t.rows.map(line));
    }
    lines.push(...t.notes.map((n) => `  ${n}`));
  }
  return `${lines.join('\n')}\n`;
}

/** The tables as Markdown sections. */
export function tablesAsMarkdown(tables: readonly ReportTable[]): string {
  const out: string[] = [];
  for (const t of tables) {
    out.push(`## ${t.title}`, '');
    if (t.rows.length > 0) {
      out.push(
        `| ${t.header.join(' | ')} |`,
        `|${t.header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
      );
      out.push(...t.rows.map((r) => `| ${r.join(' | ')} |`), '');
    }
    if (t.notes.length > 0) out.push(...t.notes.map((n) => `- ${n}`), '');
  }
  return `${out.join('\n')}`;
}
