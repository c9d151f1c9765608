/**
 * The paper's tables (ablation-tables.ts) as Markdown (tables.md: every table with its notes) and as one
 * CSV per table (a numeric column becomes `<key>` and `<key>_std`, std empty with one seed).
 */
import type { AblationTable, AblationTables, TableCell } from './ablation-tables';

function num(x: number): string {
  return Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(4);
}

function isCell(v: TableCell | string | undefined): v is TableCell {
  return typeof v === 'object' && v !== null;
}

function markdownCell(v: TableCell | string | undefined): string {
  if (!isCell(v)) return v ?? '';
  return v.std === null ? num(v.mean) : `${num(v.mean)} ± ${num(v.std)}`;
}

/** One table as Markdown (title, table, notes). */
export function tableMarkdown(t: AblationTable): string {
  const head = `| method | ${t.columns.map((c) => c.label).join(' | ')} |`;
  const rule = `|---|${t.columns.map((c) => (c.kind === 'number' ? '---:' : '---')).join('|')}|`;
  const rows = t.rows.map(
    (r) => `| ${r.label} | ${t.columns.map((c) => markdownCell(r.cells[c.key])).join(' | ')} |`,
  );
  const notes = t.notes.length ? ['', ...t.notes.map((n) => `- ${n}`)] : [];
  return [`### ${t.title}`, '', head, rule, ...rows, ...notes].join('\n');
}

/** tables.md. */
export function tablesMarkdown(t: AblationTables): string {
  const intro =
    `Mean ± sample std over ${t.seeds.length} seed(s) (${t.seeds.join(', ')}); every number is measured in ` +
    'this ablation (tables.json lists the jobs behind each cell).';
  return `${[intro, ...t.tables.map(tableMarkdown)].join('\n\n')}\n`;
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One table as CSV. */
export function tableCsv(t: AblationTable): string {
  const header = ['method'];
  for (const c of t.columns) header.push(...(c.kind === 'number' ? [c.key, `${c.key}_std`] : [c.key]));
  const lines = [header.join(',')];
  for (const r of t.rows) {
    const f = [csvField(r.label)];
    for (const c of t.columns) {
      const v = r.cells[c.key];
      if (c.kind === 'number') {
        f.push(
          isCell(v) ? String(v.mean) : csvField(v ?? ''),
          isCell(v) && v.std !== null ? String(v.std) : '',
        );
      } else f.push(csvField(isCell(v) ? String(v.mean) : (v ?? '')));
    }
    lines.push(f.join(','));
  }
  return `${lines.join('\n')}\n`;
}
