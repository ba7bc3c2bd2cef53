import type { KernelFunc } from '@tessera/tensor-core/tfjs';
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

export const geluKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const xs = values(backend, x);
  const tanhForm = attrs!.approximate === 'tanh';
  const out = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = geluValue(xs[i]!, tanhForm);
  return output(backend, x.shape, out);
};

export const geluGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const x = inputs.x!;
  const xs = values(backend, x);
  const dys = values(backend, inputs.dy!);
  const tanhForm = attrs!.approximate === 'tanh';
  const out = new Float32Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = dys[i]! * geluDerivative(xs[i]!, tanhForm);
  return output(backend, x.shape, out);
};

export const adamwKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const a = attrs as unknown as {
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    step: number;
  };
  const p = values(backend, inputs.param!);
  const g = values(backend, inputs.grad!);
  const m = values(backend, inputs.m!);
  const v = values(backend, inputs.v!);
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
  const shape = inputs.param!.shape;
  return [output(backend, shape, p1), output(backend, shape, m1), output(backend, shape, v1)];
};
