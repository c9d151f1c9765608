/**
 * `rlpkd gpu install` and `rlpkd gpu doctor`: the opt-in CUDA runtime (onnxruntime-node 1.29's binding
 * with the CUDA 13 provider, in .rlpkd-gpu/) and a check of everything the GPU routes need.
 */
import type { Command } from 'commander';
import { formatDoctorReport, gpuDoctor } from '../../gpu/doctor';
import { installGpuRuntime } from '../../gpu/install';
import { printJson } from '../run-cli';

const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

/** Registers `rlpkd gpu`. */
export function registerGpu(program: Command): void {
  const gpu = program
    .command('gpu')
    .description(
      'opt-in CUDA runtime for --ep cuda (install), and what this machine has for CUDA and WebGPU (doctor)',
    );

  gpu
    .command('install')
    .description(
      'place onnxruntime-node 1.29.0 (linux x64) and the CUDA 13 provider from npm in .rlpkd-gpu/ ' +
        '(the default install is not touched)',
    )
    .option('--from <dir>', 'take the three npm tarballs from this folder instead of the registry (offline)')
    .option('--dir <dir>', 'install here instead of .rlpkd-gpu/ (the runtime reads $RLPKD_GPU_DIR)')
    .option('--json', 'print JSON')
    .action(async (opts: { from?: string; dir?: string; json?: boolean }) => {
      const r = await installGpuRuntime({
        ...(opts.from ? { from: opts.from } : {}),
        ...(opts.dir ? { dir: opts.dir } : {}),
        log: (line) => {
          if (!opts.json) process.stderr.write(`${line}\n`);
        },
      });
      if (opts.json) {
        printJson(r);
        return;
      }
      const files = Object.entries(r.manifest.files)
        .map(([f, n]) => `  ${f} ${mb(n)}`)
        .join('\n');
      process.stdout.write(
        `GPU runtime: onnxruntime-node ${r.manifest.onnxruntimeNode} + CUDA provider of ${r.manifest.providerPackage} ` +
          `(built for onnxruntime ${r.manifest.providerOrtVersion}), ${mb(r.bytes)} in ${r.dir}\n${files}\n` +
          'next: `npx rlpkd gpu doctor` (driver, CUDA 13, cuDNN 9), then `npx rlpkd train --ep cuda`\n',
      );
    });

  gpu
    .command('doctor')
    .description(
      'check the driver, CUDA 13 and cuDNN 9 libraries, the GPU runtime and both providers; say what to do',
    )
    .option('--dir <dir>', 'GPU runtime folder (default .rlpkd-gpu/ or $RLPKD_GPU_DIR)')
    .option('--no-probe', 'do not start the providers (a probe runs a two-input Add in a child process)')
    .option('--json', 'print JSON')
    .action(async (opts: { dir?: string; probe: boolean; json?: boolean }) => {
      const report = await gpuDoctor({ ...(opts.dir ? { gpuDir: opts.dir } : {}), probe: opts.probe });
      if (opts.json) printJson(report);
      else process.stdout.write(formatDoctorReport(report));
    });
}
