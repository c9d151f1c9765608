/**
 * The small teacher and student graphs shipped in `onnx-graphs/` for the embedded demo and the tests.
 * Rebuilt byte for byte by `rlpkd models demo` (a test checks the shipped files are current).
 */
import * as path from 'node:path';
import { saveModel } from '../onnx/model-io';
import type { OnnxModel } from '../onnx/types';
import { buildResnetFpnWithInfo, type ResnetFpnInfo, type ResnetFpnOptions } from './resnet-fpn';

/** Shared by both graphs so their levels match: P2..P5 at strides 4/8/16/32, 64 channels, 96×96 input. */
const COMMON = { fpnChannels: 64, height: 96, width: 96, fpnBias: 'random', batchNorm: 'random' } as const;

/** The shipped graphs: file name → builder options. */
export const DEMO_GRAPHS: Readonly<Record<'teacher' | 'student', ResnetFpnOptions & { file: string }>> = {
  teacher: { file: 'teacher.onnx', arch: 'resnet50-fpn', widthMult: 0.125, seed: 1, ...COMMON },
  student: { file: 'student.onnx', arch: 'resnet18-fpn', widthMult: 0.125, seed: 2, ...COMMON },
};

/** Builds one demo graph (tagged with its role in the model metadata). */
export function buildDemoGraph(role: keyof typeof DEMO_GRAPHS): { model: OnnxModel; info: ResnetFpnInfo } {
  const built = buildResnetFpnWithInfo(DEMO_GRAPHS[role]);
  built.model.metadata['rlpkd.demo_role'] = role;
  return built;
}

/** Writes teacher.onnx and student.onnx into `dir`; returns the files written. */
export function writeDemoGraphs(dir: string): { role: string; file: string; info: ResnetFpnInfo }[] {
  return (Object.keys(DEMO_GRAPHS) as (keyof typeof DEMO_GRAPHS)[]).map((role) => {
    const { model, info } = buildDemoGraph(role);
    const file = path.join(dir, DEMO_GRAPHS[role].file);
    saveModel(model, file);
    return { role, file, info };
  });
}
