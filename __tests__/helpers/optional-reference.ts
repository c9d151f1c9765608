/**
 * Optional references (PyTorch, numpy) decide whether a cross-check runs. On a developer's machine a
 * missing one skips with a printed reason; in CI, `.ci/run` sets RLPKD_REQUIRE_TORCH=1 and a missing
 * reference fails the suite instead, so CI can never go green without its cross-checks.
 */

/** The environment variable that turns a missing reference from a skip into a failure. */
export const REQUIRE_REFERENCE_ENV = 'RLPKD_REQUIRE_TORCH';

/**
 * Returns `found` when there is one; otherwise prints why `what` is skipped and returns null, or throws
 * when RLPKD_REQUIRE_TORCH=1.
 * @param what the cross-check, as in "skipping <what>"
 * @param found the interpreter found (e.g. findTorchPython()), or null
 * @param install what to install or set to get it
 */
export function optionalReference(what: string, found: string | null, install: string): string | null {
  if (found) return found;
  const reason = `no Python for ${what} (${install})`;
  if (process.env[REQUIRE_REFERENCE_ENV] === '1') {
    throw new Error(
      `${reason}; ${REQUIRE_REFERENCE_ENV}=1 (set by .ci/run) makes this a failure, not a skip`,
    );
  }
  console.log(`skipping ${what}: ${reason}`);
  return null;
}

/** What makes findTorchPython() succeed, for the messages above. */
export const TORCH_INSTALL_HINT =
  'install python3-torch python3-torchvision python3-onnx, or set RLPKD_PYTHON to a Python that imports them';
