import type { FusedKernelTable } from '@tessera/tensor-core';
import { output, values } from './access.js';

/**
 * TesseraLinear and its gradient: every sum accumulated in float64 (the reference the other
 * backends are held to), each result rounded once.
 */
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
  TesseraLinearGrad: ({ inputs, attrs, backend }) => {
    const { x, weight, dy } = inputs;
    const [rows, inF] = x.shape as [number, number];
    const outF = dy.shape[1]!;
    const { transposeWeight, withBias } = attrs;
    const xs = values(backend, x);
    const w = values(backend, weight);
    const g = values(backend, dy);
    // W(i, o) in either layout: [in, out] or [out, in].
    const wAt = transposeWeight
      ? (i: number, o: number) => w[o * inF + i]!
      : (i: number, o: number) => w[i * outF + o]!;
    const dx = new Float32Array(rows * inF);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < inF; i++) {
        let s = 0;
        for (let o = 0; o < outF; o++) s += g[r * outF + o]! * wAt(i, o);
        dx[r * inF + i] = s;
      }
    }
    const dW = new Float32Array(inF * outF);
    const acc = new Float64Array(inF * outF); // [in, out]
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < inF; i++) {
        const a = xs[r * inF + i]!;
        for (let o = 0; o < outF; o++) acc[i * outF + o]! += a * g[r * outF + o]!;
      }
    }
    for (let i = 0; i < inF; i++) {
      for (let o = 0; o < outF; o++) dW[transposeWeight ? o * inF + i : i * outF + o] = acc[i * outF + o]!;
    }
    const results = [output(backend, [rows, inF], dx), output(backend, [...weight.shape], dW)];
    if (withBias) {
      const db = new Float64Array(outF);
      for (let r = 0; r < rows; r++) for (let o = 0; o < outF; o++) db[o]! += g[r * outF + o]!;
      results.push(output(backend, [outF], Float32Array.from(db)));
    }
    return results;
  },
} satisfies Partial<FusedKernelTable>;
