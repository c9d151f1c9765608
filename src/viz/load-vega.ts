/**
 * Loads vega and vega-lite. Both are ESM-only and vega awaits at the top level (vega-canvas probes for the
 * optional `canvas` package), so `require()` fails on Node 20 (ERR_REQUIRE_ASYNC_MODULE): they need a real
 * `import()`, built at run time so that no transpiler (jest's swc turns `import()` into `require`)
 * rewrites it.
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

type Importer = (specifier: string) => Promise<unknown>;

/**
 * In Node's main context a Function body's `import()` uses Node's own loader. Inside a vm context (jest
 * runs each test file in one) it would go to jest's per-file ESM registry, which fails from the second
 * test file on; there the import runs as a main-context script with Node's default loader instead (an
 * experimental vm option, hence not used where it is not needed: it prints a warning).
 */
function createImporter(): Importer {
  // vm.runInThisContext runs in Node's main context whatever context calls it: a different global there
  // means this module was loaded inside a vm context (jest's test environment).
  const inVmContext = vm.runInThisContext('globalThis') !== globalThis;
  if (!inVmContext) return new Function('specifier', 'return import(specifier)') as Importer;
  return new vm.Script('(specifier) => import(specifier)', {
    filename: __filename,
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  }).runInThisContext() as Importer;
}

const nativeImport = createImporter();

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
