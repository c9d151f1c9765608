/**
 * eval.json and eval.md in the run directory, each written atomically (temp file + rename), so a reader
 * never sees half a file and a re-evaluation replaces the previous one whole.
 */
import type { RunDir } from '../logging/run-dir';

/** Names of the evaluation files in a run directory. */
export const EVALUATION_FILES = { json: 'eval.json', markdown: 'eval.md' } as const;

/**
 * Writes `json` (the object `rlpkd eval --json` prints) and the Markdown report: a title, the distillation
 * summary text as a block, and the evaluation's tables. Returns both paths.
 */
export function writeEvaluationFiles(
  run: RunDir,
  json: unknown,
  report: { title: string; summaryText: string; tablesMarkdown: string },
): { json: string; markdown: string } {
  const markdown =
    `# ${report.title}\n\n` + '```\n' + report.summaryText.trimEnd() + '\n```\n\n' + report.tablesMarkdown;
  return {
    json: run.writeJson(EVALUATION_FILES.json, json),
    markdown: run.writeFile(EVALUATION_FILES.markdown, markdown.endsWith('\n') ? markdown : `${markdown}\n`),
  };
}
