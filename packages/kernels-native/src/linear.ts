import type { FusedKernelTable } from '@tessera/tensor-core';
import { matmulFor } from './bf16.js';
import { asF32, type NativeContext, out } from './storage.js';

const ZERO_OFFSET = Float64Array.of(0);

/**
 * TesseraLinear: one GEMM (OpenBLAS sgemm, or bf16 under that precision) whose output starts
 * as the bias rows, so the bias costs no pass of its own over the output.
 */
export function linearKernels({ addon, pool }: NativeContext) {
  return {
    TesseraLinear: (args) => {
      const { x, weight, bias } = args.inputs;
      const transposeWeight = args.attrs.transposeWeight;
      const [rows, K] = x.shape as [number, number];
      const N = transposeWeight ? weight.shape[0]! : weight.shape[1]!;
      const y = pool.alloc(rows * N);
      if (y.length) {
        const matmul = matmulFor(addon, 'native');
        const b = bias ? asF32(args, bias) : null;
        matmul(asF32(args, x), asF32(args, weight), y, ZERO_OFFSET, ZERO_OFFSET, rows, N, K, false, transposeWeight, b);
      }
      return out(args, [rows, N], y);
    },
  } satisfies Partial<FusedKernelTable>;
}
