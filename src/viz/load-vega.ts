/**
 * Loads vega and vega-lite. Both are ESM-only and vega awaits at the top level (vega-canvas probes for the
 * optional `canvas` package), so `require()` fails on Node 20 (ERR_REQUIRE_ASYNC_MODULE): they need a real
 * `import()`. It is compiled as a main-context script with Node's default ESM loader: no transpiler (jest's
 * swc turns `import()` into `require`) can rewrite it, and under jest the modules load once per process
 * through Node itself instead of jest's per-test-file ESM registry (which fails on a second test file).
 */
import * as vm from 'node:vm';
import { RlpkdError } from '../errors';

type VegaModule = typeof import('vega', { with: { 'resolution-mode': 'import' } });
type VegaLiteModule = typeof import('vega-lite', { with: { 'resolution-mode': 'import' } });

/** The two plotting modules. */
export interface VegaModules {
  vega: VegaModule;
  vegaLite: VegaLiteModule;
}

const nativeImport = new vm.Script('(specifier) => import(specifier)', {
  filename: __filename,
  importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
}).runInThisContext() as (specifier: string) => Promise<unknown>;

let loaded: Promise<VegaModules> | undefined;

/** Loads vega and vega-lite once (later calls share the promise). */
export function loadVega(): Promise<VegaModules> {
  loaded ??= (async () => {
    const vega = (await nativeImport('vega')) as VegaModule;
    const vegaLite = (await nativeImport('vega-lite')) as VegaLiteModule;
    return { vega, vegaLite };
  })().catch((err: unknown) => {
    loaded = undefined;
    throw new RlpkdError(`the plotting library could not be loaded: ${(err as Error).message}`, {
      hint: 'install the dependencies (npm ci): vega and vega-lite ~6.4',
      cause: err,
    });
  });
  return loaded;
}
