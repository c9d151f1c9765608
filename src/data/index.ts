/** Datasets (imagefolder, coco, ade20k, synthetic), image preprocessing, batching, teacher feature cache. */
export * from './types';
export * from './image-loader';
export * from './imagefolder';
export * from './coco';
export * from './ade20k';
export * from './synthetic';
export * from './synthetic-scales';
export * from './dataset';
export * from './batch-loader';
export * from './probe-split';
export * from './feature-cache';
export * from './object-size';
