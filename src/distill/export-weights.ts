/**
 * Weights back to PyTorch: a student's trainable parameters as a .safetensors file under the names the
 * ONNX export recovered (torchvision's `body.layer1.0.conv1.weight`, `fpn.layer_blocks.3.0.bias`, ...),
 * untied parameters included. The source is a model file or a run's checkpoint (its `student.onnx`, the
 * trained student as a plain inference graph); frozen constants (folded batch-norm statistics) are not
 * written: they stay the PyTorch model's own.
 */
import * as path from 'node:path';
import { RlpkdError } from '../errors';
import { trainableParameterTensors } from '../analysis/parameter-tensors';
import { writeSafetensors, type SafetensorsDType, type SafetensorsTensor } from '../io/safetensors';
import { openRunDir } from '../logging/run-dir';
import { loadModel } from '../onnx/model-io';
import { DataType, type OnnxModel, type OnnxTensor } from '../onnx/types';
import { CHECKPOINT_FILES, readRunCheckpoint } from './run-checkpoint';

/** Where the weights come from: a model file, or a run (its latest checkpoint unless one is named). */
export type WeightsSource = { model: string } | { run: string; checkpoint?: string };

/** What exportWeights wrote. */
export interface ExportWeightsResult {
  file: string;
  /** The ONNX file the parameters were read from. */
  source: string;
  /** Checkpoint label for a run source. */
  checkpoint?: string;
  tensors: number;
  elements: number;
  bytes: number;
  /** Parameters that untying gave back their own name (torch.onnx.export had merged them). */
  untied: number;
  /** Parameter names in file order. */
  names: string[];
}

const SAFETENSORS_DTYPE: Partial<Record<DataType, SafetensorsDType>> = {
  [DataType.FLOAT]: 'F32',
  [DataType.DOUBLE]: 'F64',
  [DataType.FLOAT16]: 'F16',
  [DataType.BFLOAT16]: 'BF16',
};

/** An ONNX float initializer as a safetensors tensor (same bytes; the data is not copied). */
export function onnxTensorToSafetensors(t: OnnxTensor): SafetensorsTensor {
  const dtype = SAFETENSORS_DTYPE[t.dataType];
  if (!dtype) {
    throw new RlpkdError(`parameter '${t.name}' has ONNX data type ${DataType[t.dataType] ?? t.dataType}`, {
      hint: 'only float32, float64, float16 and bfloat16 parameters can be exported',
    });
  }
  return { name: t.name, dtype, shape: [...t.dims], data: t.data as SafetensorsTensor['data'] };
}

/** The trained student graph of a run's checkpoint (latest, or `checkpoint` by label) and its path. */
export function runStudentModel(
  run: string,
  checkpoint?: string,
): { file: string; label: string; model: OnnxModel } {
  // Reading weights is evaluation: an older-format checkpoint is readable even where it cannot be resumed.
  const ckpt = readRunCheckpoint(openRunDir(run), checkpoint, 'eval');
  const file = path.join(ckpt.dir, CHECKPOINT_FILES.student);
  return { file, label: ckpt.state.label, model: loadModel(file) };
}

/**
 * Writes every trainable parameter of the source's student (shared initializers untied, names as
 * exported) to `out` in the safetensors format, with provenance in its `__metadata__`.
 */
export function exportWeights(source: WeightsSource, out: string): ExportWeightsResult {
  const student =
    'run' in source
      ? runStudentModel(source.run, source.checkpoint)
      : { file: source.model, label: undefined, model: loadModel(source.model) };
  const { tensors, classification } = trainableParameterTensors(student.model);
  if (tensors.length === 0) {
    throw new RlpkdError(`'${student.file}' has no trainable parameters (no Conv/Gemm/MatMul weights)`, {
      hint: 'pass the student or backbone ONNX graph (run `rlpkd inspect` to see its parameters)',
    });
  }
  const metadata: Record<string, string> = {
    format: 'pt',
    producer: 'rl-pyramidkd',
    source: path.basename(student.file),
    ...(student.label ? { checkpoint: student.label } : {}),
  };
  const converted = tensors.map(onnxTensorToSafetensors);
  writeSafetensors(out, converted, metadata);
  const bytes = converted.reduce((a, t) => a + t.data.byteLength, 0);
  return {
    file: out,
    source: student.file,
    ...(student.label ? { checkpoint: student.label } : {}),
    tensors: converted.length,
    elements: classification.trainableElements,
    bytes,
    untied: classification.untiedCopies.length,
    names: converted.map((t) => t.name),
  };
}
