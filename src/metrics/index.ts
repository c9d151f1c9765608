/** Task metrics, measured as the field measures them: COCOeval bbox AP/AR, mmseg mIoU, top-k accuracy. */
export { cocoBoxIou, type XywhBox } from './box-iou';
export {
  COCO_AREA_RANGES,
  COCO_IOU_THRESHOLDS,
  COCO_MAX_DETS,
  COCO_RECALL_THRESHOLDS,
  COCO_STAT_NAMES,
  COCO_STATS,
  linspace,
  type CocoAreaRange,
  type CocoStatDefinition,
  type CocoStatName,
} from './coco-params';
export {
  evaluateCoco,
  searchsortedLeft,
  type CocoCategoryResult,
  type CocoDetection,
  type CocoEvalResult,
  type CocoGroundTruth,
  type CocoGtAnnotation,
} from './coco-eval';
export {
  SEG_IGNORE_INDEX,
  SegmentationConfusion,
  type SegmentationOptions,
  type SegmentationResult,
} from './segmentation';
export { TopKAccuracy, type TopKOptions, type TopKResult } from './classification';
export { evaluateCocoFiles, readCocoGroundTruthFile, readCocoResultsFile } from './coco-json-files';
export {
  evaluateSegmentationFolders,
  readLabelPng,
  type LabelMap,
  type SegmentationFolders,
} from './label-png-files';
export { boxToOriginal, type ImageSize } from './box-rescale';
