/**
 * The package resolves as `require('rl-pyramidkd')` / `import ... from 'rl-pyramidkd'` (issue 11 item 9):
 * inside the repository through package.json's `exports` self-reference, and from a project that
 * installed the `npm pack` tarball. Installing a tarball asks the registry for its dependencies'
 * metadata, so the project here gets the tarball unpacked into node_modules/rl-pyramidkd and the
 * repository's installed dependencies linked beside it: no network. The README's library example runs
 * as written in both places (as an ES module, where its top-level await is legal; `require` is provided
 * the way Node documents for ES modules). Needs `npm run build` first (the e2e config uses dist/).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
jest.setTimeout(300_000);

/** The README's first js block under "## Library use". */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Library use'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md has no ```js block under "## Library use"');
  return m[1];
}

/** Writes the example as an ES module in `dir`, next to a link to the shipped demo graphs. */
function writeExample(dir: string, graphs: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(graphs, path.join(dir, 'onnx-graphs'));
  const file = path.join(dir, 'example.mjs');
  const prelude =
    "import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n";
  fs.writeFileSync(file, prelude + readmeExample());
  return file;
}

function node(args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The example's 20 printed steps: `step loss gradNorm`, the loss going down. */
function expectTrained(stdout: string): void {
  const losses = stdout
    .trim()
    .split('\n')
    .map((l) => Number(l.split(' ')[1]));
  expect(losses).toHaveLength(20);
  expect(losses.every(Number.isFinite)).toBe(true);
  expect(losses[19]).toBeLessThan(losses[0]);
}

const ESM_NAMED =
  "import { createSession, generateArtifacts, TrainingSession } from 'rl-pyramidkd';\n" +
  'console.log([createSession, generateArtifacts, TrainingSession].map((f) => typeof f).join(" "));\n';

describe('the rl-pyramidkd package name resolves', () => {
  let work: string;
  beforeAll(() => {
    if (!fs.existsSync(path.join(ROOT, 'dist', 'index.js'))) throw new Error('run `npm run build` first');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-exports-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('inside the repository: require, import, and the README example as written', () => {
    const r = node(['-e', "console.log(typeof require('rl-pyramidkd').createSession)"], ROOT);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('function');
    // A folder inside the repository (git-ignored), so the self-reference applies to its files.
    fs.mkdirSync(path.join(ROOT, '.rlpkd-cache'), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, '.rlpkd-cache', 'readme-example-'));
    try {
      fs.writeFileSync(path.join(dir, 'named.mjs'), ESM_NAMED);
      expect(node(['named.mjs'], dir).stdout.trim()).toBe('function function function');
      const file = writeExample(path.join(dir, 'run'), path.join(ROOT, 'onnx-graphs'));
      const ex = node([file], path.dirname(file));
      expect(ex.stderr).toBe('');
      expect(ex.status).toBe(0);
      expectTrained(ex.stdout);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('from a project that installed the packed tarball: require, import, types, bin, the README example', () => {
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(pack.status).toBe(0);
    const [{ filename, files }] = JSON.parse(pack.stdout) as {
      filename: string;
      files: { path: string }[];
    }[];
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'bin/rlpkd.js']));
    expect(paths.some((p) => p.startsWith('src/') || p.startsWith('__tests__/'))).toBe(false);

    const project = path.join(work, 'project');
    const modules = path.join(project, 'node_modules');
    fs.mkdirSync(modules, { recursive: true });
    fs.writeFileSync(path.join(project, 'package.json'), '{ "name": "consumer", "private": true }\n');
    expect(spawnSync('tar', ['xzf', path.join(work, filename), '-C', work]).status).toBe(0);
    fs.renameSync(path.join(work, 'package'), path.join(modules, 'rl-pyramidkd'));
    for (const entry of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (entry.startsWith('.')) continue;
      fs.symlinkSync(path.join(ROOT, 'node_modules', entry), path.join(modules, entry));
    }
    const installed = path.join(modules, 'rl-pyramidkd');

    const req = node(['-e', "console.log(require.resolve('rl-pyramidkd'))"], project);
    expect(req.stdout.trim()).toBe(path.join(fs.realpathSync(installed), 'dist', 'index.js'));
    fs.writeFileSync(path.join(project, 'named.mjs'), ESM_NAMED);
    expect(node(['named.mjs'], project).stdout.trim()).toBe('function function function');
    expect(node([path.join(installed, 'bin', 'rlpkd.js'), '--version'], project).stdout.trim()).toBe(
      (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    );

    // The types condition: a strict TypeScript consumer compiles against dist/index.d.ts.
    fs.writeFileSync(
      path.join(project, 'use.ts'),
      "import { createSession, type GraphSession } from 'rl-pyramidkd';\n" +
        'export const open: (file: string) => Promise<GraphSession> = (file) => createSession(file);\n',
    );
    const tsc = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
        '--noEmit',
        '--strict',
        '--module',
        'node16',
        '--moduleResolution',
        'node16',
        '--skipLibCheck',
        '--types',
        'node',
        'use.ts',
      ],
      { cwd: project, encoding: 'utf8' },
    );
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);

    const file = writeExample(path.join(project, 'run'), path.join(installed, 'onnx-graphs'));
    const ex = node([file], path.dirname(file));
    expect(ex.stderr).toBe('');
    expect(ex.status).toBe(0);
    expectTrained(ex.stdout);
  });
});
