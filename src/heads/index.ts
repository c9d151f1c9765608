export * from './types';
export { buildClassificationHead, type ClassificationHeadOptions } from './classification-head';
export { buildSegmentationHead, type SegmentationHeadOptions } from './segmentation-head';
export { buildFcosHead, FCOS_OUTPUTS, FCOS_PRIOR, type FcosHeadOptions } from './fcos-head';
export {
  crossEntropyWithIgnore,
  TORCH_IGNORE_INDEX,
  type CrossEntropyOptions,
  type CrossEntropyTensors,
} from './cross-entropy';
export {
  fcosLoss,
  sigmoidFocalLoss,
  ltrbBoxLoss,
  bceWithLogits,
  type BoxLossKind,
  type FcosLossOptions,
  type FcosLossTensors,
} from './fcos-loss';
export {
  assignFcosTargets,
  fcosLocations,
  fcosScaleRanges,
  FCOS_RANGE_FRACTIONS,
  type FcosTargets,
  type FcosTargetOptions,
  type LabelledBox,
} from './fcos-targets';
export { decodeFcos, nmsPerClass, cornerBoxIou, type Detection, type FcosDecodeOptions } from './fcos-decode';
export { appendHeadLoss, HEAD_LOSS_NAMES, type HeadLossModel, type HeadLossOptions } from './head-loss';
export { composeTaskModel, type ComposeOptions } from './compose-task-model';
export { segmentationLabelMaps } from './segmentation-decode';
export { headLevelsOf } from './head-levels';
export { splitHeadByLevel, type HeadPart, type HeadSplit, type HeadInputShapes } from './split-head';
export { topClasses, type ClassScore } from './classification-decode';
