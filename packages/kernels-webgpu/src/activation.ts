/**
 * WGSL kernels for GELU, exact (erf) and tanh forms, and its gradient: one invocation per
 * element.
 */
import type { FusedKernelTable } from '@tessera/tensor-core';
import { elementwise, storage } from './program.js';

// Normal CDF through erfc (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7), evaluated on the
// side where it does not cancel, so Φ(x) keeps relative accuracy for negative x.
const GELU_PRELUDE = `
  fn erfcPos(a : f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * a);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return poly * exp(-a * a);
  }
  fn normCdf(x : f32) -> f32 {
    let z = x * 0.70710678118654752;
    if (z >= 0.0) { return 1.0 - 0.5 * erfcPos(z); }
    return 0.5 * erfcPos(-z);
  }
  fn tanhArg(x : f32) -> f32 {
    return clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  }`;

export const activationKernels = {
  TesseraGelu: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const tanhForm = attrs.approximate === 'tanh';
    const body = tanhForm
      ? 'let xi = X[i]; v = 0.5 * xi * (1.0 + tanh(tanhArg(xi)));'
      : 'let xi = X[i]; v = xi * normCdf(xi);';
    const program = elementwise(`tesseraGelu_${tanhForm ? 'tanh' : 'erf'}`, ['X'], x.shape, body, '', GELU_PRELUDE);
    return storage(backend).runWebGPUProgram(program, [x], 'float32');
  },

  TesseraGeluGrad: ({ inputs, backend, attrs }) => {
    const x = inputs.x;
    const tanhForm = attrs.approximate === 'tanh';
    const body = tanhForm
      ? `let xi = X[i];
       let t = tanh(tanhArg(xi));
       v = DY[i] * (0.5 * (1.0 + t) + 0.5 * xi * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * xi * xi));`
      : `let xi = X[i];
       v = DY[i] * (normCdf(xi) + xi * 0.3989422804014327 * exp(-0.5 * xi * xi));`;
    const program = elementwise(
      `tesseraGeluGrad_${tanhForm ? 'tanh' : 'erf'}`,
      ['DY', 'X'],
      x.shape,
      body,
      '',
      GELU_PRELUDE,
    );
    return storage(backend).runWebGPUProgram(program, [inputs.dy, x], 'float32');
  },
} satisfies Partial<FusedKernelTable>;
