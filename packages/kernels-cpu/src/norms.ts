import type { FusedKernelTable } from '@tessera/tensor-core';
import { output, values } from './access.js';

/** Per-row statistics over the last axis: mean and 1/sqrt(var + eps) (two-pass, float64). */
function rowStats(x: ArrayLike<number>, row: number, C: number, eps: number): { mean: number; rstd: number } {
  const base = row * C;
  let sum = 0;
  for (let c = 0; c < C; c++) sum += x[base + c]!;
  const mean = sum / C;
  let sq = 0;
  for (let c = 0; c < C; c++) {
    const d = x[base + c]! - mean;
    sq += d * d;
  }
  return { mean, rstd: 1 / Math.sqrt(sq / C + eps) };
}

function rowRms(x: ArrayLike<number>, row: number, C: number, eps: number): number {
  let sq = 0;
  for (let c = 0; c < C; c++) {
    const v = x[row * C + c]!;
    sq += v * v;
  }
  return 1 / Math.sqrt(sq / C + eps);
}

/** Layer norm and RMS norm, forward and backward: two-pass row statistics in float64. */
export const normKernels = {
  TesseraLayerNorm: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xs = values(backend, x);
    const gamma = values(backend, inputs.gamma);
    const beta = inputs.beta ? values(backend, inputs.beta) : undefined;
    const eps = attrs.eps;
    const C = x.shape[x.shape.length - 1]!;
    const rows = C === 0 ? 0 : xs.length / C;
    const out = new Float32Array(xs.length);
    for (let r = 0; r < rows; r++) {
      const { mean, rstd } = rowStats(xs, r, C, eps);
      const base = r * C;
      for (let c = 0; c < C; c++) out[base + c] = (xs[base + c]! - mean) * rstd * gamma[c]! + (beta ? beta[c]! : 0);
    }
    return output(backend, x.shape, out);
  },
  TesseraLayerNormGrad: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xs = values(backend, x);
    const dy = values(backend, inputs.dy);
    const gamma = values(backend, inputs.gamma);
    const eps = attrs.eps;
    const C = x.shape[x.shape.length - 1]!;
    const rows = C === 0 ? 0 : xs.length / C;
    const dx = new Float32Array(xs.length);
    const dgamma = new Float64Array(C);
    const dbeta = new Float64Array(C);
    const xHat = new Float64Array(C);
    const dxHat = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      const { mean, rstd } = rowStats(xs, r, C, eps);
      const base = r * C;
      let meanDxHat = 0;
      let meanDxHatXHat = 0;
      for (let c = 0; c < C; c++) {
        const g = dy[base + c]!;
        xHat[c] = (xs[base + c]! - mean) * rstd;
        dxHat[c] = g * gamma[c]!;
        dgamma[c] += g * xHat[c]!;
        dbeta[c] += g;
        meanDxHat += dxHat[c]!;
        meanDxHatXHat += dxHat[c]! * xHat[c]!;
      }
      meanDxHat /= C;
      meanDxHatXHat /= C;
      for (let c = 0; c < C; c++) dx[base + c] = rstd * (dxHat[c]! - meanDxHat - xHat[c]! * meanDxHatXHat);
    }
    return [
      output(backend, x.shape, dx),
      output(backend, [C], Float32Array.from(dgamma)),
      output(backend, [C], Float32Array.from(dbeta)),
    ];
  },
  TesseraRmsNorm: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xs = values(backend, x);
    const gamma = values(backend, inputs.gamma);
    const eps = attrs.eps;
    const C = x.shape[x.shape.length - 1]!;
    const rows = C === 0 ? 0 : xs.length / C;
    const out = new Float32Array(xs.length);
    for (let r = 0; r < rows; r++) {
      const inv = rowRms(xs, r, C, eps);
      for (let c = 0; c < C; c++) out[r * C + c] = xs[r * C + c]! * inv * gamma[c]!;
    }
    return output(backend, x.shape, out);
  },
  TesseraRmsNormGrad: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const xs = values(backend, x);
    const dy = values(backend, inputs.dy);
    const gamma = values(backend, inputs.gamma);
    const eps = attrs.eps;
    const C = x.shape[x.shape.length - 1]!;
    const rows = C === 0 ? 0 : xs.length / C;
    const dx = new Float32Array(xs.length);
    const dgamma = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      const inv = rowRms(xs, r, C, eps);
      const base = r * C;
      let meanDxnX = 0;
      for (let c = 0; c < C; c++) {
        const g = dy[base + c]!;
        dgamma[c] += g * xs[base + c]! * inv;
        meanDxnX += g * gamma[c]! * xs[base + c]!;
      }
      meanDxnX /= C;
      const inv3 = inv * inv * inv;
      for (let c = 0; c < C; c++) dx[base + c] = inv * dy[base + c]! * gamma[c]! - xs[base + c]! * inv3 * meanDxnX;
    }
    return [output(backend, x.shape, dx), output(backend, [C], Float32Array.from(dgamma))];
  },
} satisfies Partial<FusedKernelTable>;
