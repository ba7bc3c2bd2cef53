import type { FusedKernelTable } from '@tessera/tensor-core';
import { output, values } from './access.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const COEFF = 0.044715;

/** erf in float64: Maclaurin series below |x| = 2.5, a continued fraction for erfc above. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: converges quickly for |x| < 2.5.
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Continued fraction for erfc, accurate for |x| >= 2.5.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

function geluValue(x: number, tanhForm: boolean): number {
  if (tanhForm) return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + COEFF * x * x * x)));
  return 0.5 * x * (1 + erf(x * INV_SQRT_2));
}

function geluDerivative(x: number, tanhForm: boolean): number {
  if (tanhForm) {
    const t = Math.tanh(SQRT_2_OVER_PI * (x + COEFF * x * x * x));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * COEFF * x * x);
  }
  return 0.5 * (1 + erf(x * INV_SQRT_2)) + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
}

/** GELU (erf and tanh forms) and its gradient, elementwise in float64. */
export const activationKernels = {
  TesseraGelu: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xs = values(backend, x);
    const tanhForm = attrs.approximate === 'tanh';
    const out = new Float32Array(xs.length);
    for (let i = 0; i < xs.length; i++) out[i] = geluValue(xs[i]!, tanhForm);
    return output(backend, x.shape, out);
  },

  TesseraGeluGrad: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xs = values(backend, x);
    const dys = values(backend, inputs.dy);
    const tanhForm = attrs.approximate === 'tanh';
    const out = new Float32Array(xs.length);
    for (let i = 0; i < xs.length; i++) out[i] = dys[i]! * geluDerivative(xs[i]!, tanhForm);
    return output(backend, x.shape, out);
  },
} satisfies Partial<FusedKernelTable>;
