import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EVALUATION_FILES, writeEvaluationFiles } from '../../src/eval/evaluation-files';
import { tablesAsMarkdown, tablesAsText, type ReportTable } from '../../src/eval/evaluation-report';
import { createRunDir } from '../../src/logging/run-dir';

const table: ReportTable = {
  title: 'probe',
  header: ['backbone', 'AP'],
  rows: [
    ['teacher', '0.5000'],
    ['student after', '0.2500'],
  ],
  notes: ['labels-only: skipped: no file'],
};

describe('evaluation files and tables', () => {
  it('renders one table as aligned text and as Markdown', () => {
    expect(tablesAsText([table])).toBe(
      'probe:\n  backbone           AP\n  teacher        0.5000\n  student after  0.2500\n' +
        '  labels-only: skipped: no file\n',
    );
    expect(tablesAsMarkdown([table])).toBe(
      '## probe\n\n| backbone | AP |\n|---|---:|\n| teacher | 0.5000 |\n| student after | 0.2500 |\n\n' +
        '- labels-only: skipped: no file\n',
    );
  });

  it('writes eval.json and eval.md whole, replacing earlier ones, with no temporary file left', () => {
    const run = createRunDir(fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-evalfiles-')), 'r');
    const report = {
      title: 'Evaluation of r',
      summaryText: 'run r\n',
      tablesMarkdown: tablesAsMarkdown([table]),
    };
    writeEvaluationFiles(run, { task: { metric: 'AP', teacher: 0.1 } }, report);
    const files = writeEvaluationFiles(run, { task: { metric: 'AP', teacher: 0.5 } }, report);
    expect(files.json).toBe(run.file(EVALUATION_FILES.json));
    expect(JSON.parse(fs.readFileSync(files.json, 'utf8'))).toEqual({ task: { metric: 'AP', teacher: 0.5 } });
    expect(fs.readFileSync(files.markdown, 'utf8')).toBe(
      '# Evaluation of r\n\n```\nrun r\n```\n\n' + tablesAsMarkdown([table]),
    );
    expect(fs.readdirSync(run.root).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});
