/** The browser runtime of a policy bundle (README.md in this folder). Imports onnxruntime-web only. */
export { AdaptiveModel } from './adaptive-model';
export type {
  AdaptiveResult,
  FloatTensor,
  LevelDecision,
  LoadOptions,
  PartTimes,
  RunOptions,
} from './adaptive-model';
export { BUNDLE_FORMAT_VERSION, BUNDLE_META_FILE, bundleFiles, bundleMetaProblems } from './bundle-format';
export type {
  BundleDecode,
  BundleFile,
  BundleHead,
  BundleHeadPart,
  BundleLevel,
  BundleMeta,
  BundlePolicy,
  BundleState,
} from './bundle-format';
export { TaskHead } from './task-head';
export type { HeadResult, HeadTensor, TaskOutput } from './task-head';
export { readBundle, sha256Hex, urlBundleReader } from './bundle-source';
export type { BundleReader, LoadedBundleFiles } from './bundle-source';
export { timeGraphRuns } from './graph-timing';
export { loadOrtWeb, ortWebVersion, wasmThreads, webEnvironment } from './ort-web';
export type { OrtWebModule, WebEnvironment, WebExecutionProvider } from './ort-web';
export { imageToInput, preprocessImage } from './preprocess';
export type { DrawableImage, RgbaImage } from './preprocess';
