/**
 * Finds a Python interpreter that can import PyTorch (for tools/export_fpn.py and the optional autograd
 * cross-checks). Debian's python3-torch lives in /usr/bin/python3, which a pyenv shim may hide.
 */
import { spawnSync } from 'node:child_process';

let cached: string | null | undefined;

/** The first of $RLPKD_PYTHON, python3, /usr/bin/python3 that imports torch, torchvision and onnx; or null. */
export function findTorchPython(): string | null {
  if (cached !== undefined) return cached;
  const candidates = [process.env.RLPKD_PYTHON, 'python3', '/usr/bin/python3'].filter(
    (c): c is string => !!c,
  );
  cached = null;
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch, torchvision, onnx'], { stdio: 'ignore', timeout: 60000 });
    if (r.status === 0) {
      cached = py;
      break;
    }
  }
  return cached;
}
