/**
 * What dataset readers produce: a list of image records with whatever labels the format has (class, boxes,
 * label mask). The batch loader turns records into NCHW float32 batches.
 */

/** One object box in COCO convention: [x, y, width, height] in pixels of the original image. */
export interface BoxAnnotation {
  bbox: [number, number, number, number];
  /** The dataset's own category id (COCO ids are not contiguous). */
  categoryId: number;
  /** Contiguous class index into Dataset.classes. */
  label: number;
  /** Crowd regions are ignored by COCO matching, not counted as misses. */
  iscrowd: boolean;
  /** Object area in pixels (COCO's `area`, used for the small/medium/large ranges). */
  area: number;
}

/** One image of a dataset. */
export interface ImageRecord {
  /** Stable identity inside the dataset (path relative to the split folder, '/' separated). */
  id: string;
  /** Absolute path of the image file. */
  file: string;
  /** Class index (imagefolder; synthetic: the largest shape). */
  label?: number;
  /** Object boxes (coco, synthetic). */
  boxes?: BoxAnnotation[];
  /** Absolute path of a PNG label mask with the same size as the image (ade20k, synthetic). */
  mask?: string;
  /** Object-size bin of the image (synthetic `scales` scenes: small, medium, large or mixed). */
  sizeBin?: 'small' | 'medium' | 'large' | 'mixed';
  /** Original size when the annotations state it. */
  width?: number;
  height?: number;
}

/** Dataset formats the toolkit reads. */
export type DatasetType = 'imagefolder' | 'coco' | 'ade20k' | 'synthetic';

/** A split of a dataset, ready for a BatchLoader. */
export interface Dataset {
  type: DatasetType;
  /** Dataset root folder. */
  root: string;
  /** Split name (folder), or `<split>-holdout` / `<split>-train` for a split carved from another. */
  split: string;
  /** Class names by contiguous index. */
  classes: string[];
  /** Images sorted by id. */
  records: ImageRecord[];
  /**
   * Label mask convention: `reduce-zero-label` (ADE20K, synthetic: value 0 = ignored "other", class c is
   * stored as c + 1; loaders map 0 -> 255 and c + 1 -> c), or undefined when there are no masks.
   */
  maskConvention?: 'reduce-zero-label';
}

/** The value of ignored pixels in loaded label masks (mmsegmentation's ignore_index). */
export const IGNORE_LABEL = 255;

/** File extensions sharp decodes (sharp's prebuilt libvips has no BMP). */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'tif', 'tiff', 'gif', 'avif'] as const;
