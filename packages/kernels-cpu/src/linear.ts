import type { FusedKernelTable } from '@tessera/tensor-core';
import { output, values } from './access.js';

/** TesseraLinear: each output row accumulated in float64 (the reference the others are held to), bias added last. */
export const linearKernels = {
  TesseraLinear: ({ inputs, attrs, backend }) => {
    const { x, weight, bias } = inputs;
    const [rows, K] = x.shape as [number, number];
    const transposeWeight = attrs.transposeWeight;
    const N = transposeWeight ? weight.shape[0]! : weight.shape[1]!;
    const xs = values(backend, x);
    const w = values(backend, weight);
    const b = bias ? values(backend, bias) : undefined;
    const out = new Float32Array(rows * N);
    const acc = new Float64Array(N);
    for (let r = 0; r < rows; r++) {
      const xb = r * K;
      if (transposeWeight) {
        // w [out, in]: one contiguous dot product per output feature.
        for (let o = 0; o < N; o++) {
          let s = 0;
          const wb = o * K;
          for (let k = 0; k < K; k++) s += xs[xb + k]! * w[wb + k]!;
          acc[o] = s;
        }
      } else {
        // w [in, out]: rows of w scaled into the accumulator row, contiguous in both.
        acc.fill(0);
        for (let k = 0; k < K; k++) {
          const a = xs[xb + k]!;
          const wb = k * N;
          for (let o = 0; o < N; o++) acc[o]! += a * w[wb + o]!;
        }
      }
      for (let o = 0; o < N; o++) out[r * N + o] = b ? acc[o]! + b[o]! : acc[o]!;
    }
    return output(backend, [rows, N], out);
  },
} satisfies Partial<FusedKernelTable>;
