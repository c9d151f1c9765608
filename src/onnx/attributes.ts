/** Reading and writing node attributes with clear errors. */
import { GraphError } from '../errors';
import type { AttributeValue, OnnxNode, OnnxTensor } from './types';

/** A value given to the builder: plain JS values are typed by shape, `attr.*` forces a type. */
export type AttributeInput = number | string | number[] | string[] | OnnxTensor | AttributeValue;

/** Forces an attribute type where inference from the JS value would be ambiguous (1.0 is an int). */
export const attr = {
  float: (value: number): AttributeValue => ({ type: 'float', value }),
  floats: (value: number[]): AttributeValue => ({ type: 'floats', value }),
  int: (value: number): AttributeValue => ({ type: 'int', value }),
  ints: (value: number[]): AttributeValue => ({ type: 'ints', value }),
  string: (value: string): AttributeValue => ({ type: 'string', value }),
};

function isAttributeValue(v: unknown): v is AttributeValue {
  return typeof v === 'object' && v !== null && 'type' in v && 'value' in v && !('dims' in v);
}

/** Converts a builder attribute value to its typed form. */
export function toAttributeValue(v: AttributeInput): AttributeValue {
  if (isAttributeValue(v)) return v;
  if (typeof v === 'number')
    return Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return { type: 'strings', value: v as string[] };
    const nums = v as number[];
    return nums.every(Number.isInteger) ? { type: 'ints', value: nums } : { type: 'floats', value: nums };
  }
  return { type: 'tensor', value: v as OnnxTensor };
}

function describe(node: OnnxNode): string {
  return `${node.opType} '${node.name || node.outputs[0]}'`;
}

/** Integer attribute (or default). */
export function getInt(node: OnnxNode, name: string, fallback: number): number;
export function getInt(node: OnnxNode, name: string): number | undefined;
export function getInt(node: OnnxNode, name: string, fallback?: number): number | undefined {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.type !== 'int')
    throw new GraphError(`${describe(node)}: attribute '${name}' must be an int, got ${a.type}`);
  return a.value;
}

/** Float attribute (or default); ints are accepted. */
export function getFloat(node: OnnxNode, name: string, fallback: number): number {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.type !== 'float' && a.type !== 'int') {
    throw new GraphError(`${describe(node)}: attribute '${name}' must be a float, got ${a.type}`);
  }
  return a.value;
}

/** Integer-list attribute (or default). */
export function getInts(node: OnnxNode, name: string, fallback: number[]): number[];
export function getInts(node: OnnxNode, name: string): number[] | undefined;
export function getInts(node: OnnxNode, name: string, fallback?: number[]): number[] | undefined {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.type !== 'ints')
    throw new GraphError(`${describe(node)}: attribute '${name}' must be ints, got ${a.type}`);
  return a.value;
}

/** Float-list attribute (or default). */
export function getFloats(node: OnnxNode, name: string, fallback: number[]): number[] {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.type !== 'floats' && a.type !== 'ints') {
    throw new GraphError(`${describe(node)}: attribute '${name}' must be floats, got ${a.type}`);
  }
  return a.value;
}

/** String attribute (or default). */
export function getString(node: OnnxNode, name: string, fallback: string): string {
  const a = node.attributes[name];
  if (!a) return fallback;
  if (a.type !== 'string')
    throw new GraphError(`${describe(node)}: attribute '${name}' must be a string, got ${a.type}`);
  return a.value;
}

/** Tensor attribute (Constant's `value`), or undefined. */
export function getTensor(node: OnnxNode, name: string): OnnxTensor | undefined {
  const a = node.attributes[name];
  if (!a) return undefined;
  if (a.type !== 'tensor')
    throw new GraphError(`${describe(node)}: attribute '${name}' must be a tensor, got ${a.type}`);
  return a.value;
}
