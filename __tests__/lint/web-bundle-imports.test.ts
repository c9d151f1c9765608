/**
 * The browser runtime (src/web/) reaches no Node-only module through any chain of run-time imports:
 * onnxruntime-node and sharp (the lint config's rule for src/web/) and the file system (checked here,
 * with the same rule, on the real files).
 */
import * as path from 'node:path';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';

const ROOT = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const rlpkd = require(path.join(ROOT, 'lint', 'no-transitive-import.js')) as NonNullable<
  Linter.Config['plugins']
>[string];
const NODE_ONLY = ['onnxruntime-node', 'sharp', 'fs', 'node:fs', 'fs/promises', 'node:fs/promises'];

test('src/web/ reaches no onnxruntime-node, sharp or fs', async () => {
  const eslint = new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ['src/web/**/*.ts'],
        languageOptions: { parser: tseslint.parser as Linter.Parser },
        plugins: { rlpkd },
        rules: { 'rlpkd/no-transitive-import': ['error', { modules: NODE_ONLY }] },
      },
    ],
  });
  const results = await eslint.lintFiles(['src/web/**/*.ts']);
  expect(results.length).toBeGreaterThanOrEqual(6);
  expect(
    results.flatMap((r) => r.messages.map((m) => `${path.relative(ROOT, r.filePath)}: ${m.message}`)),
  ).toEqual([]);
  // The rule does see such a chain: the training data loader decodes with sharp and reads files.
  const [probe] = await eslint.lintText(
    "import { loadImage } from '../data/image-loader';\nexport const x = loadImage;\n",
    {
      filePath: path.join(ROOT, 'src', 'web', 'probe.ts'),
    },
  );
  expect(probe.messages.map((m) => m.message)).toEqual([expect.stringMatching(/reaches (sharp|node:fs|fs)/)]);
});
