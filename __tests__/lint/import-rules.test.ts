/**
 * The house rules on runtime imports (eslint.config.js) fire where they should and only there: each case
 * lints a small in-memory source under a virtual path in one folder with ESLint's Node API.
 */
import * as path from 'node:path';
import { ESLint, type Linter } from 'eslint';

const ROOT = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const config = require(path.join(ROOT, 'eslint.config.js')) as Linter.Config[];
const eslint = new ESLint({ cwd: ROOT, overrideConfigFile: true, overrideConfig: config });

/** `ruleId: message` of each problem ESLint reports for `code` as the file `file`. */
async function lint(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

const NODE = "import * as ort from 'onnxruntime-node';\nexport const x = ort;\n";
const WEB = "import type * as ort from 'onnxruntime-web';\nexport type X = typeof ort;\n";

describe('runtime import rules', () => {
  test('onnxruntime-node outside src/runtime/ fails; inside it passes', async () => {
    for (const dir of ['training', 'distill', 'rl', 'bench', 'cli', 'web', 'onnx', 'autodiff']) {
      expect(await lint(`src/${dir}/probe.ts`, NODE)).toEqual([
        expect.stringMatching(/^no-restricted-imports: 'onnxruntime-node' import is restricted/),
      ]);
    }
    expect(await lint('src/runtime/probe.ts', NODE)).toEqual([]);
  });

  test('onnxruntime-web (even a type import) outside src/runtime/ and src/web/ fails', async () => {
    for (const dir of ['training', 'distill', 'onnx', 'autodiff']) {
      expect(await lint(`src/${dir}/probe.ts`, WEB)).toEqual([
        expect.stringMatching(/^no-restricted-imports: 'onnxruntime-web' import is restricted/),
      ]);
    }
    expect(await lint('src/runtime/probe.ts', WEB)).toEqual([]);
    expect(await lint('src/web/probe.ts', WEB)).toEqual([]);
  });

  test('src/onnx/ and src/autodiff/ import nothing from src/runtime/, not even types', async () => {
    const cases = [
      "import type { HostTensor } from '../runtime/tensors';\nexport type X = HostTensor;\n",
      "import { createSession } from '../runtime';\nexport const x = createSession;\n",
    ];
    for (const dir of ['onnx', 'autodiff', 'onnx/infer', 'autodiff/rules']) {
      const up = '../'.repeat(dir.split('/').length);
      for (const code of cases) {
        expect(await lint(`src/${dir}/probe.ts`, code.replace('../', up))).toEqual([
          expect.stringMatching(/^no-restricted-imports: .* restricted from being used by a pattern/),
        ]);
      }
    }
    // Other folders may use the session interface.
    expect(await lint('src/training/probe.ts', cases[1])).toEqual([]);
  });

  test('nothing src/web/ imports reaches onnxruntime-node, through any chain of imports', async () => {
    // runtime/session.ts imports onnxruntime-node; runtime/index.ts re-exports it.
    expect(
      await lint(
        'src/web/probe.ts',
        "import { createSession } from '../runtime/session';\nexport const x = createSession;\n",
      ),
    ).toEqual([
      expect.stringMatching(
        /^rlpkd\/no-transitive-import: '..\/runtime\/session' reaches onnxruntime-node .*via src\/runtime\/session.ts/,
      ),
    ]);
    expect(await lint('src/web/probe.ts', "export * from '../runtime';\n")).toEqual([
      expect.stringMatching(
        /'..\/runtime' reaches onnxruntime-node .*via src\/runtime\/index.ts → src\/runtime\/[a-z-]+\.ts/,
      ),
    ]);
    // A dynamic import counts (a bundler follows it), also of the package itself; a type-only import does not.
    expect(await lint('src/web/probe.ts', "export const load = () => import('onnxruntime-node');\n")).toEqual(
      [expect.stringMatching(/^rlpkd\/no-transitive-import: 'onnxruntime-node' reaches onnxruntime-node/)],
    );
    expect(
      await lint('src/web/probe.ts', "export const load = () => import('../runtime/session');\n"),
    ).toHaveLength(1);
    expect(
      await lint(
        'src/web/probe.ts',
        "import type { GraphSession } from '../runtime/session';\nexport type S = GraphSession;\n",
      ),
    ).toEqual([]);
    // The wasm session only type-imports the Node modules: the browser may load it.
    expect(
      await lint(
        'src/web/probe.ts',
        "import { createWebSession } from '../runtime/web-session';\nexport const x = createWebSession;\n",
      ),
    ).toEqual([]);
  });
});
