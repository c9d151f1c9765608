/** How a teach run reports: metrics records, log lines and the summary table the CLI prints. */
import type { TaskScore } from './task-scorer';
import type { TeachReport } from './teach-model';

/** A score's values as `val/<name>` metrics records. */
export function valValues(s: TaskScore): Record<string, number | null> {
  return Object.fromEntries(Object.entries(s.values).map(([k, v]) => [`val/${k}`, v]));
}

/** `AP 0.1234, AP50 0.2345, ...` (undefined values left out). */
export function formatValues(s: TaskScore): string {
  return Object.entries(s.values)
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${v!.toFixed(4)}`)
    .join(', ');
}

/** The summary table the CLI prints: each metric for chance, untrained and trained. */
export function formatTeachSummary(r: TeachReport, runDir: string): string {
  const fmt = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : v.toFixed(4));
  const names = Object.keys(r.trained.values);
  const width = Math.max(8, ...names.map((n) => n.length));
  const lines = [
    `${r.task} on ${r.dataset.type} '${r.dataset.val}' (${r.trained.images} images), ${r.steps} steps in ` +
      `${r.seconds.toFixed(1)} s${r.interrupted ? ' (interrupted)' : ''}`,
    `${'metric'.padEnd(width)}  ${'chance'.padStart(8)}  ${'untrained'.padStart(9)}  ${'trained'.padStart(8)}`,
    ...names.map(
      (n) =>
        `${n.padEnd(width)}  ${fmt(r.chance.values[n]).padStart(8)}  ${fmt(r.untrained.values[n]).padStart(9)}  ` +
        `${fmt(r.trained.values[n]).padStart(8)}`,
    ),
    `run: ${runDir}`,
  ];
  return `${lines.join('\n')}\n`;
}
