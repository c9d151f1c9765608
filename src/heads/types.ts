/**
 * What a task head consumes and produces. A head is a graph with one float input per pyramid level
 * (named like the backbone's outputs, so composing is a rename-free splice) and task outputs.
 */
import type { OnnxModel } from '../onnx/types';

/** One pyramid level a head reads: the tensor name, its channels, stride and spatial size. */
export interface HeadLevel {
  /** Input name of the head graph (the backbone output it attaches to, e.g. `p3`). */
  name: string;
  channels: number;
  /** Downsampling factor relative to the image (4 for P2, 8 for P3, ...). */
  stride: number;
  height: number;
  width: number;
}

/** The task a head solves. */
export type HeadTask = 'classification' | 'segmentation' | 'detection';

/** A head graph and what the loss and decoding need to know about it. */
export interface HeadModel {
  task: HeadTask;
  model: OnnxModel;
  /** Levels in the order the head reads them (finest first). */
  levels: HeadLevel[];
  /** Head outputs by role. */
  outputs: Record<string, string>;
  numClasses: number;
  /** Image size the head was built for (segmentation upsamples to it; detection clips boxes to it). */
  imageHeight: number;
  imageWidth: number;
}
