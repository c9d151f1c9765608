/**
 * tools/gpu-check.sh on the CPU machine: the split/reassemble halves (parts of at most RLPKD_PART_MB,
 * SHA256SUMS, a damaged or missing part refused), the gradient check's CPU-reference half end to end
 * (`grads cpu` on a small ResNet-18-FPN), and compare-grads.js catching a wrong gradient. The GPU half
 * runs only on a GPU machine (`bash parts/gpu-check.sh run parts`). Needs `npm run build` first.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readNpy, writeNpy } from '../../src/io/npy';

const ROOT = path.join(__dirname, '..', '..');
const SCRIPT = path.join(ROOT, 'tools', 'gpu-check.sh');
jest.setTimeout(300_000);

function sh(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT) {
  const r = spawnSync('bash', [SCRIPT, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const sha = (f: string): string => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('tools/gpu-check.sh', () => {
  let work: string;
  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlpkd-gpu-check-'));
  });
  afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

  it('packs a folder into checksummed parts of at most RLPKD_PART_MB and reassembles it byte for byte', () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'node', 'bin'), { recursive: true });
    // Random bytes do not compress: 2.5 MB makes three parts of ≤ 1 MB.
    fs.writeFileSync(path.join(src, 'node', 'bin', 'node'), crypto.randomBytes(2.5 * 2 ** 20), {
      mode: 0o755,
    });
    fs.writeFileSync(path.join(src, 'README'), 'hello\n');
    const parts = path.join(work, 'parts');
    const packed = sh(['pack', src, parts], { RLPKD_PART_MB: '1' });
    expect(packed.code).toBe(0);
    const files = fs.readdirSync(parts).sort();
    expect(files).toEqual([
      'SHA256SUMS',
      'bundle.tgz.part-000',
      'bundle.tgz.part-001',
      'bundle.tgz.part-002',
    ]);
    for (const f of files.filter((x) => x.includes('part-'))) {
      expect(fs.statSync(path.join(parts, f)).size).toBeLessThanOrEqual(2 ** 20);
    }

    const dest = path.join(work, 'dest');
    const unpacked = sh(['unpack', parts, dest]);
    expect(unpacked.stderr).toBe('');
    expect(unpacked.code).toBe(0);
    expect(sha(path.join(dest, 'node', 'bin', 'node'))).toBe(sha(path.join(src, 'node', 'bin', 'node')));
    expect(fs.statSync(path.join(dest, 'node', 'bin', 'node')).mode & 0o111).not.toBe(0);
    expect(fs.readFileSync(path.join(dest, 'README'), 'utf8')).toBe('hello\n');

    // A damaged part, then a missing one: refused before anything is extracted.
    const part1 = path.join(parts, 'bundle.tgz.part-001');
    const good = fs.readFileSync(part1);
    const bad = Buffer.from(good);
    bad[100] ^= 0xff;
    fs.writeFileSync(part1, bad);
    const damaged = sh(['unpack', parts, path.join(work, 'dest2')]);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toMatch(
      /^error: unpack: a part is damaged \(checksum mismatch\): copy it again$/m,
    );
    expect(fs.existsSync(path.join(work, 'dest2'))).toBe(false);
    fs.rmSync(part1);
    const missing = sh(['unpack', parts, path.join(work, 'dest3')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^error: unpack: parts missing or extra in .*: expected bundle\.tgz\.part-000 bundle\.tgz\.part-001 bundle\.tgz\.part-002, found bundle\.tgz\.part-000 bundle\.tgz\.part-002$/m,
    );
  });

  it('dry-runs every step on the CPU (tiny graphs), and compare-grads fails a wrong gradient', () => {
    // GPU_CHECK_EPS=cpu stands in for the providers the doctor would find on a GPU machine; the figures
    // mean nothing here, the plumbing (inputs, references, comparisons, JSON summaries) is what is checked.
    const results = path.join(work, 'results');
    const r = sh(['checks'], {
      GPU_CHECK_RESULTS: results,
      GPU_CHECK_EPS: 'cpu',
      GPU_CHECK_GRAD_ARCH: 'resnet18-fpn',
      GPU_CHECK_GRAD_SIZE: '64',
      GPU_CHECK_GRAD_BATCH: '1',
      GPU_CHECK_SIZES: '64',
      GPU_CHECK_BATCHES: '2',
      GPU_CHECK_TEACHER: 'resnet18-fpn',
      GPU_CHECK_STUDENT: 'resnet18-fpn',
      GPU_CHECK_COPY_MB: '4',
      GPU_CHECK_STEPS: '1',
      GPU_CHECK_DEMO: '0',
      RLPKD_GPU_DIR: path.join(work, 'no-gpu-runtime'),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^--ep cuda: {3}not usable$/m);
    expect(r.stderr).toMatch(/== gradients on the CPU engine \(reference\)/);
    expect(r.stdout).toMatch(
      /^cpu vs cpu: 36 parameters, worst relative L2 0\.00e\+0 .* 0 over 0\.000001 → PASS$/m,
    );
    // Without a GPU runtime the 1.29-vs-1.30 comparison fails, and says so without stopping the check.
    expect(r.stdout).toMatch(/^gradient check FAILED/m);
    expect(r.stdout).toMatch(
      /^cpu batch 2 64²: [\d.]+ ms\/step, peak GPU memory \? MiB, \d+ MB across PCIe ≈ [\d.]+ ms = \d+% of the step$/m,
    );
    const step = JSON.parse(fs.readFileSync(path.join(results, 'step-cpu-b2-64.json'), 'utf8')) as {
      batch: number;
    };
    expect(step.batch).toBe(2);
    expect(fs.readFileSync(path.join(results, 'torch-step.txt'), 'utf8')).toMatch(
      /PyTorch side by side skipped|medianMs/,
    );

    const grads = path.join(results, 'grads-resnet18-fpn-b1-64');
    const copy = path.join(work, 'perturbed');
    fs.cpSync(path.join(grads, 'cpu'), copy, { recursive: true });
    const index = JSON.parse(fs.readFileSync(path.join(copy, 'index.json'), 'utf8')) as Record<
      string,
      string
    >;
    const file = path.join(copy, index['fpn.layer_blocks.0.weight'] ?? Object.values(index)[0]);
    const g = readNpy(file);
    const data = Float32Array.from(g.data as Float32Array, (x, i) => (i === 0 ? x + 1 : x));
    writeNpy(file, { data, dims: g.shape });
    const cmp = spawnSync(
      process.execPath,
      [
        path.join(ROOT, 'tools', 'gpu-check', 'compare-grads.js'),
        path.join(grads, 'cpu'),
        copy,
        '1e-3',
        'perturbed',
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(cmp.status).toBe(1);
    expect(cmp.stdout).toMatch(/^perturbed: 36 parameters, worst relative L2 .* 1 over 0\.001 → FAIL$/m);
  });

  it('without a subcommand prints its usage; an unknown one exits 2', () => {
    const help = sh([]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/tools\/gpu-check\.sh prepare \[OUT\]/);
    expect(sh(['nope']).code).toBe(2);
  });
});
