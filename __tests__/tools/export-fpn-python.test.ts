/**
 * tools/export_fpn.py finds its interpreter the way the tests do: started by a Python without PyTorch, it
 * re-runs itself under the first of $RLPKD_PYTHON, python3, /usr/bin/python3 that imports torch,
 * torchvision and onnx, and says so; when none does, PyTorch's absence is one error naming RLPKD_PYTHON.
 * A Python started with -S (no site-packages) stands in for a pyenv/venv python3 without torch.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTorchPython } from '../../src/tools/python';
import { optionalReference, TORCH_INSTALL_HINT } from '../helpers/optional-reference';

const TOOL = path.join(__dirname, '..', '..', 'tools', 'export_fpn.py');
const torchPython = optionalReference(
  'the export tool’s interpreter search',
  findTorchPython(),
  TORCH_INSTALL_HINT,
);
jest.setTimeout(120_000);

(torchPython ? describe : describe.skip)('export_fpn.py interpreter search', () => {
  let dir: string;
  let wrapper: string;
  let marker: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-export-python-'));
    marker = path.join(dir, 'calls.txt');
    // A stand-in for the user's RLPKD_PYTHON: records each call, then runs the real torch Python.
    wrapper = path.join(dir, 'torch-python');
    fs.writeFileSync(wrapper, `#!/bin/sh\necho "$@" >> '${marker}'\nexec '${torchPython}' "$@"\n`, {
      mode: 0o755,
    });
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function run(env: NodeJS.ProcessEnv, args: string[]): ReturnType<typeof spawnSync> {
    const clean = { ...process.env };
    delete clean.RLPKD_PYTHON;
    delete clean.RLPKD_EXPORT_REEXEC;
    return spawnSync(torchPython!, ['-S', TOOL, ...args], {
      encoding: 'utf8',
      env: { ...clean, ...env },
      timeout: 120_000,
    });
  }

  it('re-runs itself under $RLPKD_PYTHON when started by a Python without torch', () => {
    fs.rmSync(marker, { force: true });
    const r = run({ RLPKD_PYTHON: wrapper }, ['--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: export_fpn\.py/);
    expect(r.stderr).toMatch(
      new RegExp(`^note: .* has no torch/torchvision/onnx; running under ${wrapper}$`, 'm'),
    );
    const calls = fs.readFileSync(marker, 'utf8').trim().split('\n');
    // One probe (-c ... torch torchvision onnx), then the tool itself with the original arguments.
    expect(calls).toHaveLength(2);
    expect(calls[0]).toMatch(/^-c .* torch torchvision onnx$/);
    expect(calls[1]).toBe(`${TOOL} --help`);
  });

  it('--quiet keeps the note out of stderr', () => {
    const r = run({ RLPKD_PYTHON: wrapper }, ['--help', '--quiet']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('with no Python that has torch, reports it once and names RLPKD_PYTHON', () => {
    // An empty PATH hides python3; /usr/bin/python3, when it is this very interpreter, is not re-run.
    const empty = path.join(dir, 'empty-bin');
    fs.mkdirSync(empty, { recursive: true });
    const r = run({ PATH: empty }, ['--arch', 'resnet18', '--out', path.join(dir, 'x.onnx')]);
    const usrBinIsOther =
      fs.existsSync('/usr/bin/python3') &&
      fs.realpathSync('/usr/bin/python3') !== fs.realpathSync(torchPython!);
    if (usrBinIsOther) {
      console.log('only partly checked: /usr/bin/python3 is another interpreter, which the tool may pick');
      return;
    }
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error: PyTorch is not importable/m);
    expect(r.stderr).toMatch(/hint: .*set RLPKD_PYTHON/);
    expect(fs.existsSync(path.join(dir, 'x.onnx'))).toBe(false);
  });
});
