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
    /**
     * TesseraLinearGrad: dx = dy·Wᵀ, then dW and db from one read of dy (the sums ride in our
     * GEMM's packing of dy). Under bf16 precision, both products are bf16 and db a separate
     * fp32 sum.
     */
    TesseraLinearGrad: (args) => {
      const { x, weight, dy } = args.inputs;
      const { transposeWeight, withBias } = args.attrs;
      const [rows, inF] = x.shape as [number, number];
      const outF = dy.shape[1]!;
      const dx = pool.alloc(rows * inF);
      const dW = pool.alloc(inF * outF);
      const db = withBias ? pool.alloc(outF) : null;
      const [xs, ws, dys] = [asF32(args, x), asF32(args, weight), asF32(args, dy)];
      const matmul = matmulFor(addon, 'native');
      // [rows, out]·Wᵀ: W [in, out] is read transposed, W [out, in] as it is.
      if (dx.length) matmul(dys, ws, dx, ZERO_OFFSET, ZERO_OFFSET, rows, inF, outF, false, !transposeWeight, null);
      if (matmul === addon.bf16Matmul) {
        const [a, b, M, N] = transposeWeight ? [dys, xs, outF, inF] : [xs, dys, inF, outF];
        if (dW.length) addon.bf16Matmul(a, b, dW, ZERO_OFFSET, ZERO_OFFSET, M, N, rows, true, false, null);
        if (db) addon.reduceSum(dys, 1, rows, outF, db);
      } else {
        addon.linearWeightGrad(xs, dys, dW, db, rows, inF, outF, transposeWeight);
      }
      const results = [out(args, [rows, inF], dx), out(args, [...weight.shape], dW)];
      if (db) results.push(out(args, [outF], db));
      return results;
    },
  } satisfies Partial<FusedKernelTable>;
}
