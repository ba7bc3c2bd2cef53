import type { FusedKernelTable } from '@tessera/tensor-core';
import { output, values } from './access.js';

/** The AdamW update in float64, in torch.optim.AdamW's order of operations. */
export const adamwKernels = {
  TesseraAdamW: ({ inputs, backend, attrs: a }) => {
    const p = values(backend, inputs.param);
    const g = values(backend, inputs.grad);
    const m = values(backend, inputs.m);
    const v = values(backend, inputs.v);
    const n = p.length;
    const p1 = new Float32Array(n);
    const m1 = new Float32Array(n);
    const v1 = new Float32Array(n);
    const decay = 1 - a.lr * a.weightDecay;
    const stepSize = a.lr / (1 - a.beta1 ** a.step);
    const sqrtBc2 = Math.sqrt(1 - a.beta2 ** a.step);
    for (let i = 0; i < n; i++) {
      const gi = g[i]!;
      const mi = a.beta1 * m[i]! + (1 - a.beta1) * gi;
      const vi = a.beta2 * v[i]! + (1 - a.beta2) * gi * gi;
      m1[i] = mi;
      v1[i] = vi;
      p1[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + a.eps);
    }
    const shape = inputs.param.shape;
    return [output(backend, shape, p1), output(backend, shape, m1), output(backend, shape, v1)];
  },
} satisfies Partial<FusedKernelTable>;

/** Σx² in float64 and the finiteness probe Σ(x·0) (0, or NaN when any element is NaN or ±Inf). */
export const sumSquaresKernels = {
  TesseraSumSquares: ({ inputs, backend }) => {
    const x = values(backend, inputs.x);
    let sumSquares = 0;
    let probe = 0;
    for (let i = 0; i < x.length; i++) {
      const xi = x[i]!;
      sumSquares += xi * xi;
      probe += xi * 0;
    }
    return [output(backend, [], Float32Array.of(sumSquares)), output(backend, [], Float32Array.of(probe))];
  },
} satisfies Partial<FusedKernelTable>;
