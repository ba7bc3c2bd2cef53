import type * as tfc from '@tessera/tensor-core/tfjs';
import type { CudaKernels } from '../addon.js';
import type { CudaBackend } from '../backend.js';

/** What each kernel module is made from. */
export interface CudaContext {
  addon: CudaKernels;
  /** TF32 tensor-core GEMMs (TESSERA_CUDA_TF32=1); off by default so conformance compares fp32 with fp32. */
  tf32: boolean;
  /** The host-staged cpu kernel of the same name: what a kernel runs for a case it does not cover. */
  fallback(kernelName: string): tfc.KernelFunc;
}

export const backendOf = (args: { backend: unknown }) => args.backend as CudaBackend;
export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Row-major element strides of `shape`. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    s[k] = acc;
    acc *= shape[k]!;
  }
  return s;
}

export const MAX_RANK = 6;

// Op codes shared with native/kernels.h.
export const BINARY = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  Maximum: 4,
  Minimum: 5,
  Pow: 6,
  SquaredDifference: 7,
} as const;
export const UNARY = {
  Neg: 0,
  Exp: 1,
  Log: 2,
  Sqrt: 3,
  Rsqrt: 4,
  Relu: 5,
  Step: 6,
  Tanh: 7,
  Sigmoid: 8,
  Abs: 9,
  Square: 10,
  Reciprocal: 11,
  Scale: 12,
} as const;
export const REDUCE = { Sum: 0, Mean: 1, Max: 2, Min: 3 } as const;
export const EPILOGUE_DEFAULT = 1;
