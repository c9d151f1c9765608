/**
 * commander value parsers shared by the commands: each turns a bad value into commander's usage error
 * (exit 2) naming what was expected.
 */
import { InvalidArgumentError } from 'commander';
import type { ExecutionProviderName } from '../runtime/session';

/** One of `allowed`, as typed. */
export function choice<T extends string>(...allowed: readonly T[]): (value: string) => T {
  return (value) => {
    if (!(allowed as readonly string[]).includes(value))
      throw new InvalidArgumentError(`expected one of ${allowed.join(', ')}, got '${value}'`);
    return value as T;
  };
}

/** A whole number ≥ `min`. */
export function integer(min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || n < min)
      throw new InvalidArgumentError(`expected an integer ≥ ${min}, got '${value}'`);
    return n;
  };
}

/** A whole number ≥ 1 (said as "a positive integer"). */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  }
  return n;
}

/** A finite number > 0. */
export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  return n;
}

/** A finite number ≥ 0. */
export function nonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`expected a number ≥ 0, got '${value}'`);
  return n;
}

/** An execution provider name: cpu, cuda, webgpu or auto. */
export function provider(value: string): ExecutionProviderName {
  if (value !== 'cpu' && value !== 'cuda' && value !== 'webgpu' && value !== 'auto') {
    throw new InvalidArgumentError(`expected cpu, cuda, webgpu or auto, got '${value}'`);
  }
  return value;
}
