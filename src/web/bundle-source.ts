/**
 * Reading a policy bundle: meta.json and its ONNX files from a base URL (fetch) or from any reader
 * (Node tests read the folder), each file checked against its size and sha-256. Missing files,
 * mismatched hashes, another bundle format or another onnxruntime-web version fail with one error
 * that says which file and what to do.
 */
import { RlpkdError } from '../errors';
import {
  BUNDLE_META_FILE,
  bundleFiles,
  bundleMetaProblems,
  type BundleFile,
  type BundleMeta,
} from './bundle-format';
import { ortWebVersion } from './ort-web';

/** Reads a bundle file by its name in the bundle; rejects when it is missing. */
export type BundleReader = (file: string) => Promise<Uint8Array>;

/** A reader over HTTP(S): `${base}/${file}` with fetch. */
export function urlBundleReader(base: string): BundleReader {
  const root = base.endsWith('/') ? base : `${base}/`;
  return async (file) => {
    const page = (globalThis as { location?: { href: string } }).location?.href;
    const url = new URL(file, new URL(root, page ?? 'http://localhost/')).href;
    let res: Response;
    try {
      res = await fetch(url);
    } catch (err) {
      throw new RlpkdError(
        `bundle file '${file}' could not be fetched from ${url}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (!res.ok) {
      throw new RlpkdError(`bundle file '${file}' is missing (${res.status} ${res.statusText} at ${url})`, {
        hint: 'export the bundle again with `rlpkd export-policy --run RUN --out DIR`',
      });
    }
    return new Uint8Array(await res.arrayBuffer());
  };
}

/** Hex sha-256 with the Web Crypto API (browsers in secure contexts, Node ≥ 19). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A bundle's description and its files' bytes, checked. */
export interface LoadedBundleFiles {
  meta: BundleMeta;
  /** File name → bytes. */
  files: Map<string, Uint8Array>;
}

/**
 * Reads meta.json and every file it lists through `read`, checking the bundle format, the
 * onnxruntime-web version it was exported for (major.minor must match this runtime's) and each
 * file's size and sha-256.
 */
export async function readBundle(read: BundleReader): Promise<LoadedBundleFiles> {
  let meta: BundleMeta;
  try {
    meta = JSON.parse(new TextDecoder().decode(await read(BUNDLE_META_FILE))) as BundleMeta;
  } catch (err) {
    if (err instanceof RlpkdError) throw err;
    throw new RlpkdError(`the bundle's ${BUNDLE_META_FILE} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const problems = bundleMetaProblems(meta);
  if (problems.length > 0) {
    throw new RlpkdError(`not a usable policy bundle: ${problems.join('; ')}`, {
      hint: 'export the bundle again with `rlpkd export-policy --run RUN --out DIR`',
    });
  }
  const mine = await ortWebVersion();
  const minor = (v: string): string => v.split('.').slice(0, 2).join('.');
  if (minor(meta.versions.onnxruntimeWeb) !== minor(mine)) {
    throw new RlpkdError(
      `the bundle was exported for onnxruntime-web ${meta.versions.onnxruntimeWeb}, this runtime uses ${mine}`,
      { hint: 'export the bundle with the rl-pyramidkd version that built this page' },
    );
  }
  const files = new Map<string, Uint8Array>();
  await Promise.all(
    bundleFiles(meta).map(async (f: BundleFile) => {
      const bytes = await read(f.file);
      if (bytes.byteLength !== f.bytes || (await sha256Hex(bytes)) !== f.sha256) {
        throw new RlpkdError(
          `bundle file '${f.file}' does not match meta.json (${bytes.byteLength} bytes, expected ${f.bytes}, or another sha-256)`,
          { hint: 'the bundle was changed or copied in part: export it again' },
        );
      }
      files.set(f.file, bytes);
    }),
  );
  return { meta, files };
}
