import type { Rng, Tensor } from '@tessera/tensor-core';
import type { Tolerance } from '../types.js';

/** An input generated on the host from a seeded Rng, so every backend gets the same bits. */
export interface HostInput {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  values: Float32Array | Int32Array | Uint8Array;
}

/** A fused op (tensor-core's defineOp) as far as the report cares: does a backend have its own kernel? */
export interface KernelProbe {
  readonly name: string;
  hasKernel(backend?: string): boolean;
}

/**
 * One level-2 case: seeded inputs, a computation, and which inputs to differentiate.
 * `run` must leave nothing but its outputs alive (compositions use tf.tidy): the runner
 * counts live tensors and backend buffers around it to catch leaking kernels.
 */
export interface OpCase {
  /** Unique, "<group>/<variant>". */
  name: string;
  /** The op under test; also the key for tolerance overrides. */
  group: string;
  inputs(rng: Rng): HostInput[];
  run(xs: Tensor[]): Tensor | Tensor[];
  /** Indices of the inputs to take gradients for (through a seeded random weighting of the outputs). */
  grad?: number[];
  tolerance: Tolerance;
  /** For gradients, when they accumulate where the forward does not (broadcast, gather). */
  gradTolerance?: Tolerance;
  /** The fused op this case exercises, to report own kernel vs reference composition. */
  fused?: KernelProbe;
}

// Host-side generators. They take the case's own Rng (seeded by the case name), so a
// filter that runs a subset of cases still gives each case the same inputs.

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function normal(rng: Rng, name: string, shape: number[], std = 1, mean = 0): HostInput {
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = mean + std * rng.normal();
  return { name, shape, dtype: 'float32', values };
}

export function uniform(rng: Rng, name: string, shape: number[], low: number, high: number): HostInput {
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = low + (high - low) * rng.uniform();
  return { name, shape, dtype: 'float32', values };
}

/** Uniform in ±[low, high): magnitudes bounded away from zero (denominators). */
export function signedUniform(rng: Rng, name: string, shape: number[], low: number, high: number): HostInput {
  const x = uniform(rng, name, shape, low, high);
  for (let i = 0; i < x.values.length; i++) if (rng.uniform() < 0.5) x.values[i] = -x.values[i]!;
  return x;
}

export function ints(rng: Rng, name: string, shape: number[], low: number, high: number): HostInput {
  const values = new Int32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = low + rng.int(high - low);
  return { name, shape, dtype: 'int32', values };
}

/** Small integers stored as float32: comparisons and max/min then meet real ties. */
export function smallFloats(rng: Rng, name: string, shape: number[], n = 5): HostInput {
  const values = new Float32Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = rng.int(n) - Math.floor(n / 2);
  return { name, shape, dtype: 'float32', values };
}

export function bools(rng: Rng, name: string, shape: number[], pTrue = 0.5): HostInput {
  const values = new Uint8Array(size(shape));
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform() < pTrue ? 1 : 0;
  return { name, shape, dtype: 'bool', values };
}

export function fixed(
  name: string,
  shape: number[],
  values: number[],
  dtype: HostInput['dtype'] = 'float32',
): HostInput {
  const typed =
    dtype === 'float32'
      ? Float32Array.from(values)
      : dtype === 'int32'
        ? Int32Array.from(values)
        : Uint8Array.from(values);
  return { name, shape, dtype, values: typed };
}
